// Reference leg for qcn's salted Merkle trees: runs @openzeppelin/merkle-tree 1.0.8 on JSON input.
//
//   node merkle_tool.mjs build  <values.json|->   values = [["0x<salt>","0x<digest>"], ...]
//        -> {"root", "dump", "proofs": [[...] per value index]}
//   node merkle_tool.mjs verify <input.json|->    input = {"dump", "root", "proofs": [[...]]}
//        -> {"loaded": true, "treeVerify": [bool...], "staticVerify": [bool...], "root"}
//   node merkle_tool.mjs bench  <values.json> [repeats]
//        -> {"n", "runs_s": [...], "best_s", "records_per_s", "timed": "..."}
//   node merkle_tool.mjs commitment <header.json|->  header = {"root", "reportHash", ..., "supersedes"}
//        -> {"commitment": keccak256(abi.encode(<8 header fields>))}  (independent of web3.py/eth_abi)
//
// Errors print {"error": "..."} on stdout and exit 1, so the Python side can show the library's own message.
import { readFileSync } from "node:fs";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
// Both are dependencies of @openzeppelin/merkle-tree (what its own leaf hashing uses).
import { encode } from "@metamask/abi-utils";
import { keccak256 } from "ethereum-cryptography/keccak";
import { bytesToHex } from "ethereum-cryptography/utils";

const ENCODING = ["bytes32", "bytes32"];

function readJson(path) {
  return JSON.parse(readFileSync(path === "-" ? 0 : path, "utf8"));
}

function build(values) {
  const tree = StandardMerkleTree.of(values, ENCODING);
  const proofs = values.map((_, i) => tree.getProof(i));
  return { root: tree.root, dump: tree.dump(), proofs };
}

function verify({ dump, root, proofs }) {
  const tree = StandardMerkleTree.load(dump); // validates every node of the dump
  const treeVerify = dump.values.map((_, i) => tree.verify(i, proofs[i]));
  const staticVerify = dump.values.map((v, i) => StandardMerkleTree.verify(root, ENCODING, v.value, proofs[i]));
  return { loaded: true, root: tree.root, treeVerify, staticVerify };
}

function bench(values, repeats) {
  const runs = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    const tree = StandardMerkleTree.of(values, ENCODING);
    const t1 = process.hrtime.bigint();
    if (tree.root.length !== 66) throw new Error("bad root");
    runs.push(Number(t1 - t0) / 1e9);
  }
  const best = Math.min(...runs);
  return {
    n: values.length,
    runs_s: runs,
    best_s: best,
    records_per_s: values.length / best,
    timed: "StandardMerkleTree.of(values, ['bytes32','bytes32']) incl. leaf hashing, sorting, tree; excludes node start and JSON load",
  };
}

const HEADER_FIELDS = [
  ["root", "bytes32"], ["reportHash", "bytes32"], ["agreementId", "bytes32"], ["supplier", "address"],
  ["recordCount", "uint32"], ["verdict", "uint8"], ["anchoredAt", "uint64"], ["supersedes", "bytes32"],
];

function commitment(header) {
  const types = HEADER_FIELDS.map(([, t]) => t);
  const values = HEADER_FIELDS.map(([name, t]) => (t.startsWith("uint") ? BigInt(header[name]) : header[name]));
  return { commitment: "0x" + bytesToHex(keccak256(encode(types, values))) };
}

const [cmd, path, extra] = process.argv.slice(2);
try {
  let out;
  if (cmd === "build") out = build(readJson(path));
  else if (cmd === "verify") out = verify(readJson(path));
  else if (cmd === "commitment") out = commitment(readJson(path));
  else if (cmd === "bench") out = bench(readJson(path), Number(extra ?? 3));
  else throw new Error(`unknown command '${cmd}' (build | verify | bench | commitment)`);
  process.stdout.write(JSON.stringify(out));
} catch (err) {
  process.stdout.write(JSON.stringify({ error: String(err && err.message ? err.message : err) }));
  process.exit(1);
}
