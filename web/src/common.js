// Shared helpers of the portal's pages: CSRF-protected JSON calls, translated messages, toasts.
export const $ = (sel, root = document) => root.querySelector(sel);

export function i18n() {
  const el = document.getElementById("qcn-i18n");
  return el ? JSON.parse(el.textContent) : {};
}

export function csrf() {
  const m = document.querySelector('meta[name="qcn-csrf"]');
  return m ? m.content : "";
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error.localized || error.message || `HTTP ${status}`);
    this.status = status;
    this.error = error;
  }
}

// POST to the portal API with the session's CSRF token; JSON or FormData body; JSON answer or ApiError.
export async function post(url, body) {
  const headers = { "X-CSRF-Token": csrf(), Accept: "application/json" };
  let payload = body;
  if (!(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body ?? {});
  }
  const resp = await fetch(url, { method: "POST", headers, body: payload, credentials: "same-origin" });
  return answer(resp);
}

export async function get(url) {
  const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  return answer(resp);
}

async function answer(resp) {
  let data = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  if (!resp.ok) throw new ApiError(resp.status, (data && data.error) || { message: `HTTP ${resp.status}` });
  return data;
}

export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const p = document.createElement("p");
  p.className = `toast ${kind}`;
  p.textContent = text;
  box.appendChild(p);
  setTimeout(() => p.remove(), 8000);
}

export function showError(form, err) {
  let out = form.querySelector(".flow-error");
  if (!out) {
    out = document.createElement("p");
    out.className = "flow-error error";
    out.setAttribute("role", "alert");
    form.appendChild(out);
  }
  out.textContent = err.message || String(err);
}
