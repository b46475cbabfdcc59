// Keys stay in the browser: an encrypted JSON keystore (decrypted here, only when signing) or an injected
// EIP-1193 wallet. Only signatures and signed transactions leave the page.
import { getAddress } from "ethers/address";
import { Transaction } from "ethers/transaction";
import { BaseWallet, decryptKeystoreJson } from "ethers/wallet";
import { SigningKey } from "ethers/crypto";
import { $, i18n } from "./common.js";

const userId = () => (document.querySelector('meta[name="qcn-user"]') || {}).content || "anon";
const partyAccount = () => (document.querySelector('meta[name="qcn-account"]') || {}).content || "";
const storeKey = () => `qcn.keystore.${userId()}`;
const modeKey = () => `qcn.signer.${userId()}`;

export function keyState() {
  const mode = localStorage.getItem(modeKey());
  if (mode === "wallet") return { mode };
  const json = localStorage.getItem(storeKey());
  if (!json) return { mode: null };
  try {
    return { mode: "keystore", address: getAddress("0x" + JSON.parse(json).address.replace(/^0x/, "")) };
  } catch {
    return { mode: null };
  }
}

export function importKeystore(text) {
  const doc = JSON.parse(text);
  if (!doc.address || !(doc.crypto || doc.Crypto)) throw new Error(i18n().badpw);
  const address = getAddress("0x" + doc.address.replace(/^0x/, ""));
  if (partyAccount() && address !== getAddress(partyAccount())) throw new Error(i18n().wrongkey);
  localStorage.setItem(storeKey(), text);
  localStorage.setItem(modeKey(), "keystore");
  return address;
}

export function forgetKey() {
  localStorage.removeItem(storeKey());
  localStorage.removeItem(modeKey());
}

// An injected EIP-1193 wallet, spoken to directly (no provider library: keeps the page small)
class InjectedSigner {
  constructor(address) {
    this.address = address;
  }
  static async connect() {
    if (!window.ethereum) throw new Error("no injected wallet (window.ethereum) in this browser");
    const [address] = await window.ethereum.request({ method: "eth_requestAccounts" });
    return new InjectedSigner(getAddress(address));
  }
  async getAddress() {
    return this.address;
  }
  async signTypedData(domain, types, message) {
    const full = { domain, types: { ...types, EIP712Domain: this.domainTypes }, primaryType: this.primaryType, message };
    return window.ethereum.request({ method: "eth_signTypedData_v4", params: [this.address, JSON.stringify(full)] });
  }
  async signTransaction(fields) {
    // many wallets only send (eth_sendTransaction), which we cannot relay: they answer with an error here
    const tx = Transaction.from(fields).toJSON();
    const raw = await window.ethereum.request({ method: "eth_signTransaction", params: [{ ...tx, from: this.address }] });
    return typeof raw === "string" ? raw : raw.raw;
  }
}

export async function connectWallet() {
  const signer = await InjectedSigner.connect();
  const address = signer.address;
  if (partyAccount() && getAddress(address) !== getAddress(partyAccount())) throw new Error(i18n().wrongkey);
  localStorage.setItem(modeKey(), "wallet");
  return address;
}

// Ask the person to confirm (and, for a keystore, to type its password); resolves to a signer.
function confirm(what) {
  const t = i18n();
  const state = keyState();
  if (!state.mode) return Promise.reject(new Error(t.nokey));
  const dialog = $("#sign-dialog");
  $("#sign-what").textContent = what;
  $("#sign-mode").textContent = state.mode === "wallet" ? t.wallet : `${t.keystore} ${state.address}`;
  $("#sign-pw-label").hidden = state.mode !== "keystore";
  $("#sign-error").textContent = "";
  const pw = $("#sign-password");
  pw.value = "";
  return new Promise((resolve, reject) => {
    const form = $("#sign-form");
    const cancel = $("#sign-cancel");
    const done = () => {
      form.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
    };
    const onCancel = () => {
      done();
      dialog.close();
      reject(new Error("cancelled"));
    };
    const onSubmit = async (ev) => {
      ev.preventDefault();
      try {
        let signer;
        if (state.mode === "wallet") {
          signer = await InjectedSigner.connect();
        } else {
          $("#sign-ok").disabled = true;
          const account = await decryptKeystoreJson(localStorage.getItem(storeKey()), pw.value);
          pw.value = "";
          signer = new BaseWallet(new SigningKey(account.privateKey));
        }
        if (partyAccount() && getAddress(await signer.getAddress()) !== getAddress(partyAccount())) {
          throw new Error(t.wrongkey);
        }
        done();
        dialog.close();
        resolve(signer);
      } catch (err) {
        $("#sign-error").textContent = err && err.code === "INVALID_ARGUMENT" ? t.badpw : err.message || t.badpw;
      } finally {
        $("#sign-ok").disabled = false;
      }
    };
    form.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
    dialog.showModal();
    (state.mode === "keystore" ? pw : $("#sign-ok")).focus();
  });
}

function describeTyped(typed) {
  return `${typed.primaryType}\n${JSON.stringify(typed.message, null, 2)}`;
}

export async function signTyped(typed) {
  const signer = await confirm(describeTyped(typed));
  const types = { ...typed.types };
  if (signer instanceof InjectedSigner) {
    signer.domainTypes = types.EIP712Domain;
    signer.primaryType = typed.primaryType;
  }
  delete types.EIP712Domain;
  return signer.signTypedData(typed.domain, types, typed.message);
}

// Sign prepared transactions ([{description, tx}]) exactly as the CLI does; returns raw 0x hex strings.
export async function signTransactions(prepared) {
  const what = prepared.map((p) => `${p.description}\n  to ${p.tx.to}\n  nonce ${p.tx.nonce}`).join("\n");
  const signer = await confirm(what);
  const out = [];
  for (const { tx } of prepared) {
    const fields = {
      chainId: BigInt(tx.chainId),
      to: tx.to,
      data: tx.data,
      value: BigInt(tx.value || 0),
      nonce: Number(tx.nonce),
      gasLimit: BigInt(tx.gas),
    };
    if (tx.maxFeePerGas !== undefined) {
      fields.type = 2;
      fields.maxFeePerGas = BigInt(tx.maxFeePerGas);
      fields.maxPriorityFeePerGas = BigInt(tx.maxPriorityFeePerGas);
    } else {
      fields.type = 0;
      fields.gasPrice = BigInt(tx.gasPrice);
    }
    out.push(await signer.signTransaction(fields));
  }
  return out;
}
