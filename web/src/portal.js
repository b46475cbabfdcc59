// The portal's page behaviour: live updates (server-sent events), sign-and-relay forms, upload with progress.
import { $, ApiError, csrf, get, i18n, post, showError, toast } from "./common.js";
import { connectWallet, forgetKey, importKeystore, keyState, signTransactions, signTyped } from "./signer.js";

function liveUpdates() {
  if (!document.body.dataset.live || !window.EventSource) return;
  const t = i18n();
  const source = new EventSource("/portal/events");
  const fire = (ev) => {
    const data = JSON.parse(ev.data);
    document.body.dispatchEvent(new CustomEvent("qcn:update", { bubbles: true, detail: data }));
    const what = { batch: t.batch_event, case: t.case_event, analysis: t.analysis_event }[ev.type];
    toast(`${what}: ${data.lot || data.id} ${data.status || data.state || ""}`);
  };
  for (const type of ["batch", "analysis", "case"]) source.addEventListener(type, fire);
}

// A relay endpoint answers 202 with the transactions it queued and their status URLs; follow each (in order:
// the gateway sends the next once the previous is mined) until mined, reverted or failed, and show it in `out`.
const FINAL = new Set(["mined", "reverted", "failed"]);

export class RelayFailed extends Error {
  constructor(status) {
    super(`${status.function} ${status.status}: ${status.error || ""} (${status.tx_hash})`);
    this.status = status;
  }
}

function describeResult(result) {
  if (!result || typeof result !== "object") return "";
  if (result.error) return result.error;
  if (result.template_id) return `${result.template_id} v${result.version}: ${result.status}`;
  if (result.agreement_id) return `${result.agreement_id.slice(0, 10)}…: ${result.status}`;
  return JSON.stringify(result);
}

function renderRelay(out, statuses, t) {
  out.textContent = "";
  for (const s of statuses) {
    const li = document.createElement("li");
    li.className = "relay-tx";
    li.dataset.status = s.status;
    li.dataset.txHash = s.tx_hash;
    if (s.block_number != null) li.dataset.block = String(s.block_number);
    const what =
      s.status === "mined"
        ? `${t.mined} ${s.block_number}`
        : s.status === "pending"
          ? t.waiting_receipt
          : `${s.status === "reverted" ? t.reverted : t.relay_failed}: ${s.error || ""}`;
    const code = document.createElement("code");
    code.textContent = s.tx_hash;
    li.append(`${s.function} · ${what} · `, code);
    const result = s.status === "mined" ? describeResult(s.result) : "";
    if (result) {
      const r = document.createElement("span");
      r.className = "relay-result";
      r.textContent = ` · ${t.result}: ${result}`;
      li.appendChild(r);
    }
    out.appendChild(li);
  }
}

export async function followRelay(accepted, out, { interval = 400, timeoutMs = 300_000 } = {}) {
  const t = i18n();
  const statuses = accepted.transactions.map((s) => ({ ...s }));
  renderRelay(out, statuses, t);
  const deadline = Date.now() + timeoutMs;
  let failed = null;
  // all of them to the end: after a failure the gateway does not send the rest, and says so in their status
  for (let i = 0; i < statuses.length; i++) {
    while (!FINAL.has(statuses[i].status)) {
      if (Date.now() > deadline) throw new Error(`${t.waiting_receipt} ${statuses[i].tx_hash}`);
      await new Promise((r) => setTimeout(r, interval));
      statuses[i] = await get(statuses[i].status_url);
      renderRelay(out, statuses, t);
    }
    if (statuses[i].status !== "mined") failed = failed || statuses[i];
  }
  out.dataset.done = "true";
  if (failed) throw new RelayFailed(failed);
  return statuses;
}

function relayOutput(form) {
  let out = form.querySelector(".relay-status");
  if (!out) {
    out = document.createElement("ul");
    out.className = "relay-status";
    out.setAttribute("role", "status");
    out.setAttribute("aria-live", "polite");
    form.appendChild(out);
  }
  return out;
}

// <form class="qcn-flow" data-kind="tx|typed" data-prepare=URL data-submit=URL>: prepare -> sign here -> relay
async function runFlow(form) {
  const t = i18n();
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const prepared = await post(form.dataset.prepare, new FormData(form));
    toast(t.signing);
    let result;
    if (prepared.typed_data) {
      const signature = await signTyped(prepared.typed_data);
      const body =
        form.dataset.submitShape === "signature" ? { signature } : { message: prepared.typed_data.message, signature };
      toast(t.relaying);
      result = await post(form.dataset.submit, body);
    } else {
      const raw = await signTransactions(prepared.transactions);
      toast(t.relaying);
      result = await post(form.dataset.submit, { raw });
    }
    if (result && result.status_url) result = await followRelay(result, relayOutput(form));
    toast(t.done, "ok");
    form.dataset.result = JSON.stringify(result);
    // long enough to read the relay's outcome (tx hash, block) before the page shows the new state
    setTimeout(() => window.location.reload(), result && result.length ? 1500 : 600);
  } catch (err) {
    if (err.message !== "cancelled") showError(form, err);
  } finally {
    button.disabled = false;
  }
}

function flows() {
  // delegated, so forms that htmx swaps in keep working
  document.addEventListener("submit", (ev) => {
    const form = ev.target.closest && ev.target.closest("form.qcn-flow");
    if (!form) return;
    ev.preventDefault();
    runFlow(form);
  });
}

function keyPage() {
  const state = $("#key-state");
  if (!state) return;
  const show = () => {
    const s = keyState();
    state.textContent = s.mode === "keystore" ? `✓ ${s.address}` : s.mode === "wallet" ? "✓ wallet" : "—";
  };
  show();
  $("#keystore-file").addEventListener("change", async (ev) => {
    try {
      importKeystore(await ev.target.files[0].text());
    } catch (err) {
      state.textContent = err.message;
      return;
    }
    show();
  });
  $("#keystore-forget").addEventListener("click", () => {
    forgetKey();
    show();
  });
  $("#wallet-connect").addEventListener("click", async () => {
    try {
      await connectWallet();
      show();
    } catch (err) {
      state.textContent = err.message;
    }
  });
}

function dropZone(zone, input, onFiles) {
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      input.click();
    }
  });
  zone.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    onFiles([...ev.dataTransfer.files]);
  });
  input.addEventListener("change", () => onFiles([...input.files]));
}

function cell(tr, text, tag = "td") {
  const c = document.createElement(tag);
  c.textContent = text ?? "—";
  tr.appendChild(c);
}

function uploadPage() {
  const form = $("#upload-form");
  if (!form) return;
  const t = i18n();
  const labels = $("#upload-i18n").dataset;
  let files = [];
  const list = $("#upload-list");
  dropZone($("#drop"), $("#upload-files"), (chosen) => {
    files = files.concat(chosen);
    list.textContent = "";
    for (const f of files) {
      const li = document.createElement("li");
      li.textContent = `${f.name} (${f.size.toLocaleString()} B)`;
      list.appendChild(li);
    }
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData();
    for (const f of files) data.append("files", f, f.name);
    if ($("#upload-agreement").value) data.append("agreement_id", $("#upload-agreement").value);
    if ($("#upload-lot-size").value) data.append("lot_size", $("#upload-lot-size").value);
    const out = $("#upload-result");
    out.textContent = t.uploading;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/portal/api/batches");
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.setRequestHeader("Accept", "application/json");
    if ($("#upload-key").value) xhr.setRequestHeader("Idempotency-Key", $("#upload-key").value);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) $("#upload-progress").value = Math.round((100 * e.loaded) / e.total);
    };
    xhr.onload = () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = { error: { message: xhr.responseText.slice(0, 300) } };
      }
      if (xhr.status >= 400) {
        out.textContent = "";
        showError(form, new ApiError(xhr.status, body.error || {}));
        return;
      }
      const err = form.querySelector(".flow-error");
      if (err) err.remove();
      $("#upload-progress").value = 100;
      showBatch(out, body, labels, t);
    };
    xhr.send(data);
  });
}

function showBatch(out, body, labels, t) {
  const b = body.batch;
  out.textContent = "";
  const h = document.createElement("h2");
  h.textContent = `${b.lot_id || b.batch_id.slice(0, 12)}: ${b.record_count} ${labels.records} · ${b.verdict}`;
  out.appendChild(h);
  const files = document.createElement("table");
  files.id = "upload-files-result";
  const head = document.createElement("tr");
  cell(head, labels.file, "th");
  cell(head, labels.format, "th");
  files.appendChild(head);
  for (const f of b.files) {
    const tr = document.createElement("tr");
    cell(tr, f.filename);
    cell(tr, `${f.format} (${f.kind})${f.signature_verdict ? " · " + f.signature_verdict : ""}`);
    files.appendChild(tr);
  }
  out.appendChild(files);
  const chars = (b.assessment && b.assessment.characteristics) || [];
  if (chars.length) {
    const table = document.createElement("table");
    table.id = "upload-characteristics";
    const hr = document.createElement("tr");
    for (const l of [labels.characteristic, labels.samples, "Cpk", labels.verdict]) cell(hr, l, "th");
    table.appendChild(hr);
    for (const c of chars) {
      const tr = document.createElement("tr");
      cell(tr, c.id);
      cell(tr, `${c.samples} / ${c.required_samples}`);
      cell(tr, c.cpk == null ? "—" : c.cpk.toFixed(2));
      cell(tr, c.nonconforming ? `${c.nonconforming} ✗` : "✓");
      table.appendChild(tr);
    }
    out.appendChild(table);
  }
  const status = document.createElement("p");
  status.id = "anchor-status";
  status.dataset.status = b.status;
  out.appendChild(status);
  const link = document.createElement("a");
  link.href = body.href;
  link.textContent = labels.open;
  out.appendChild(link);
  const render = (s) => {
    status.dataset.status = s.status;
    status.textContent =
      s.status === "anchored"
        ? `${t.anchored}: ${labels.block} ${s.receipt.block_number}, ${labels.tx} ${s.receipt.tx_hash}`
        : t.pending;
  };
  render(b);
  if (b.status === "anchored") return;
  // follow the batch until mined: the live feed says when; a slow poll covers a dropped connection
  let finished = false;
  const check = async () => {
    if (finished) return;
    const s = await get(`/portal/api/batches/${b.id}`);
    render(s);
    if (s.status === "anchored") {
      finished = true;
      document.body.removeEventListener("qcn:update", onUpdate);
    }
  };
  const onUpdate = (ev) => {
    if (ev.detail && ev.detail.type === "batch" && ev.detail.id === b.id) check();
  };
  document.body.addEventListener("qcn:update", onUpdate);
  const poll = async () => {
    await check();
    if (!finished) setTimeout(poll, 1000);
  };
  setTimeout(poll, 1000);
}

function templatePage() {
  const form = $("#template-form");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const problems = $("#template-problems");
    problems.textContent = "";
    try {
      const doc = (await post(form.dataset.merge, new FormData(form))).document;
      const draft = await post(form.dataset.create, { document: doc });
      const raw = await signTransactions(draft.transactions);
      const accepted = await post(`/portal/api/templates/${draft.template.id}/publish`, { raw });
      const out = $("#template-relay");
      out.hidden = false;
      await followRelay(accepted, out);
      window.location.href = draft.template.href;
    } catch (err) {
      const list = document.createElement("ul");
      const field = err.error ? err.error.field : err instanceof RelayFailed ? err.status.function : "";
      const items = (err.error && err.error.problems) || [{ field, message: err.message }];
      for (const p of items) {
        const li = document.createElement("li");
        li.className = "problem";
        const code = document.createElement("code");
        code.textContent = p.field || "document";
        li.appendChild(code);
        li.appendChild(document.createTextNode(` ${p.message}`));
        list.appendChild(li);
      }
      problems.textContent = err.error && err.error.localized ? err.error.localized.split(":")[0] : "";
      problems.appendChild(list);
    }
  });
}

function proposeForm() {
  const form = $("#propose-form");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const out = await post(form.action, new FormData(form));
      window.location.href = out.href;
    } catch (err) {
      showError(form, err);
    }
  });
}

function recordProof() {
  const input = $("#record-index");
  if (!input) return;
  const base = $("#record-proof").dataset.base;
  input.addEventListener("input", () => {
    $("#record-proof-link").href = `${base}${Number(input.value) || 0}/proof.json`;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  liveUpdates();
  flows();
  keyPage();
  uploadPage();
  templatePage();
  proposeForm();
  recordProof();
});
