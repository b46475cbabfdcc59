// A test stand-in for a wallet extension: an EIP-1193 provider injected into the page before any script
// runs, holding its own key (as an extension does, outside the portal's code) and signing with ethers.
// Bundled by the browser test with esbuild; QCN_TEST_KEY and QCN_CHAIN_ID are substituted at build time.
import { Wallet } from "ethers/wallet";
import { Transaction } from "ethers/transaction";

const wallet = new Wallet(QCN_TEST_KEY);
const fail = (code, message) => Object.assign(new Error(message), { code });
// kept across page loads (a signing flow reloads the page), for the test to read back
const LOG = "qcn.test-wallet.calls";
const record = (entry) => {
  const calls = JSON.parse(sessionStorage.getItem(LOG) || "[]");
  calls.push(entry);
  sessionStorage.setItem(LOG, JSON.stringify(calls));
};
Object.defineProperty(window, "__walletCalls", { get: () => JSON.parse(sessionStorage.getItem(LOG) || "[]") });
window.ethereum = {
  isQcnTestWallet: true,
  async request({ method, params = [] }) {
    record({ method, params: JSON.parse(JSON.stringify(params)) });
    switch (method) {
      case "eth_requestAccounts":
      case "eth_accounts":
        return [wallet.address];
      case "eth_chainId":
        return "0x" + Number(QCN_CHAIN_ID).toString(16);
      case "eth_signTypedData_v4": {
        const [from, json] = params;
        if (from.toLowerCase() !== wallet.address.toLowerCase()) throw fail(4100, "unknown account");
        const typed = JSON.parse(json);
        const types = { ...typed.types };
        delete types.EIP712Domain;
        return wallet.signTypedData(typed.domain, types, typed.message);
      }
      case "eth_signTransaction": {
        const [tx] = params;
        const fields = Transaction.from({ ...tx, from: undefined, hash: undefined, sig: undefined });
        return wallet.signTransaction(fields);
      }
      default:
        throw fail(4200, `unsupported method ${method}`);
    }
  },
  on() {},
  removeListener() {},
};
