"""The end of ``qcn demo``: portal logins for the three demo people, their keystores, and (in a terminal) the
gateway kept serving the demo's data until Ctrl-C."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

__all__ = ["DEMO_KEYSTORE_PASSWORD", "serve_until_interrupted", "welcome"]

DEMO_KEYSTORE_PASSWORD = "qcn-demo-keystore"  # noqa: S105 - the demo's public dev accounts, never production
_PEOPLE = {"oem": "OEM quality engineer", "supplier": "Supplier quality engineer", "lab": "Lab signatory"}


def welcome(*, http: httpx.Client, admin_token: str, parties: dict[str, Any], ids: dict[str, int], data_dir: Path,
            url: str) -> list[dict[str, str]]:  # fmt: skip
    """Create the demo's portal users and keystore files; print where to log in. Returns the logins."""
    folder = data_dir / "keystores"
    folder.mkdir(parents=True, exist_ok=True)
    logins = []
    for who, title in _PEOPLE.items():
        email, password = f"{who}@demo.qcn", f"{who}-demo-password"
        body = {"party_id": ids[who], "email": email, "display_name": title, "role": "signer", "password": password}
        resp = http.post("/v1/users", json=body, headers={"Authorization": f"Bearer {admin_token}"})
        resp.raise_for_status()
        account = parties[who].account
        # a lighter scrypt cost than wallets use, so decrypting in the browser takes well under a second
        keystore = Account.encrypt(account.key, DEMO_KEYSTORE_PASSWORD, kdf="scrypt", iterations=2**14)
        path = folder / f"{who}-{account.address}.json"
        path.write_text(json.dumps(keystore))
        logins.append({"who": who, "email": email, "password": password, "keystore": str(path)})
    print("\n== the portal ==")
    print(f"open {url}/portal/ in a browser (public proof check: {url}/verify)")
    for login in logins:
        print(f"  {login['who']:9s} {login['email']:18s} password {login['password']:24s} keystore {login['keystore']}")
    print(f"  keystore password (import it on the 'Signing key' page): {DEMO_KEYSTORE_PASSWORD}")
    return logins


def serve_until_interrupted() -> None:
    """Keep the caller's gateway and chain running while a person looks around (in a terminal only)."""
    if not sys.stdin.isatty():
        return
    print("\nthe gateway keeps serving the demo's data; press Ctrl-C to stop", flush=True)

    def _stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C (and a polite kill) end the wait, so the caller's clean-up stops the gateway and the chain
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
