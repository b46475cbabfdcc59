// Public verify page: checks a qcn-proof in the browser, against the chain's RPC, with OpenZeppelin's
// reference Merkle tree library and ethers. The gateway is asked for nothing but (for a file) the proof path.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { AbiCoder } from "ethers/abi";
import { keccak256, sha256 } from "ethers/crypto";
import { getBytes, toUtf8Bytes } from "ethers/utils";

const $ = (s) => document.querySelector(s);
const HEADER_TYPES = ["bytes32", "bytes32", "bytes32", "address", "uint32", "uint8", "uint64", "bytes32"];
const COMMITMENT_OF = "0x" + keccak256(toUtf8Bytes("commitmentOf(bytes32)")).slice(2, 10);

async function rpc(url, method, params) {
  const resp = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = await resp.json();
  if (body.error) throw new Error(body.error.message || JSON.stringify(body.error));
  return body.result;
}

// RFC 8785 (JSON Canonicalization Scheme): sorted keys (UTF-16 order), ECMAScript number and string forms
export function canonicalize(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalize).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalize(value[k])}`).join(",")}}`;
}

export async function verifyProof(proof, rpcUrl, fileBytes, registry) {
  const steps = [];
  const step = (name, ok, detail = "") => {
    steps.push({ name, ok, detail });
    return ok;
  };
  if (!step("format", proof && proof.format === "qcn-proof" && proof.version === 1, `${proof && proof.format} v${proof && proof.version}`))
    return steps;
  const leaf = proof.leaf;
  let digest = leaf.sha256.toLowerCase();
  if (leaf.kind === "record" && leaf.record) {
    digest = sha256(toUtf8Bytes(canonicalize(leaf.record)));
  } else if (fileBytes) {
    digest = sha256(fileBytes);
  }
  if (!step("leaf", digest.toLowerCase() === leaf.sha256.toLowerCase(), digest)) return steps;
  const h = proof.header;
  const rootOk = StandardMerkleTree.verify(h.root, ["bytes32", "bytes32"], [leaf.salt, leaf.sha256], proof.siblings);
  if (!step("root", rootOk, h.root)) return steps;
  let onChain;
  try {
    const net = await rpc(rpcUrl, "eth_chainId", []);
    // the registry is the one the reader trusts, never the proof's own: a look-alike could answer anything
    const trusted = (registry || "").trim().toLowerCase();
    const sameChain = BigInt(net) === BigInt(proof.chainId);
    const sameRegistry = trusted !== "" && trusted === String(proof.registry).toLowerCase();
    const where = sameRegistry ? `chain ${BigInt(net)}, registry ${trusted}` : `the proof names registry ${proof.registry}, not ${trusted || "?"}`;
    if (!step("chain", sameChain && sameRegistry, sameChain ? where : `chain ${BigInt(net)}, the proof is for ${proof.chainId}`))
      return steps;
    const data = COMMITMENT_OF + AbiCoder.defaultAbiCoder().encode(["bytes32"], [proof.batchId]).slice(2);
    onChain = await rpc(rpcUrl, "eth_call", [{ to: trusted, data }, "latest"]);
  } catch (err) {
    step("chain", false, err.message);
    return steps;
  }
  const values = [h.root, h.reportHash, h.agreementId, h.supplier, h.recordCount, h.verdict, h.anchoredAt, h.supersedes];
  const mine = keccak256(AbiCoder.defaultAbiCoder().encode(HEADER_TYPES, values));
  step("commit", mine === onChain, onChain);
  return steps;
}

function show(steps) {
  const t = $("#verify-i18n").dataset;
  const names = { format: t.stepFormat, leaf: t.stepLeaf, root: t.stepRoot, chain: t.stepChain, commit: t.stepCommit };
  const ok = steps.length === 5 && steps.every((s) => s.ok);
  const out = $("#verify-result");
  out.textContent = "";
  const h = document.createElement("h2");
  h.id = "verify-verdict";
  h.className = ok ? "ok" : "bad";
  h.dataset.ok = String(ok);
  h.textContent = ok ? t.ok : t.fail;
  out.appendChild(h);
  const ul = document.createElement("ul");
  for (const s of steps) {
    const li = document.createElement("li");
    li.textContent = `${s.ok ? "✓" : "✗"} ${names[s.name] || s.name} ${s.detail ? "— " + s.detail : ""}`;
    ul.appendChild(li);
  }
  out.appendChild(ul);
}

async function run(proof, fileBytes) {
  $("#verify-result").textContent = $("#verify-i18n").dataset.checking;
  let steps;
  try {
    steps = await verifyProof(proof, $("#rpc-url").value, fileBytes, $("#registry").value);
  } catch (err) {
    steps = [{ name: "format", ok: false, detail: err.message }];
  }
  show(steps);
}

document.addEventListener("DOMContentLoaded", () => {
  const zone = $("#proof-drop");
  const input = $("#proof-file");
  const take = async (file) => {
    let proof;
    try {
      proof = JSON.parse(await file.text());
    } catch (err) {
      show([{ name: "format", ok: false, detail: err.message }]);
      return;
    }
    run(proof);
  };
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      input.click();
    }
  });
  zone.addEventListener("dragover", (ev) => ev.preventDefault());
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    take(ev.dataTransfer.files[0]);
  });
  input.addEventListener("change", () => take(input.files[0]));
  $("#verify-file").addEventListener("click", async () => {
    const file = $("#data-file").files[0];
    const batch = $("#batch-id").value.trim();
    if (!file || !batch) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const digest = sha256(bytes).slice(2);
    const resp = await fetch(`/v1/verify/file-proof?batch_id=${encodeURIComponent(batch)}&sha256=${digest}`);
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      show([{ name: "leaf", ok: false, detail: (body.error && body.error.message) || `HTTP ${resp.status}` }]);
      return;
    }
    run(await resp.json(), getBytes(bytes));
  });
});
