"""A party's side of the API: an API key for the gateway and, kept locally, the party's own signing key.

Used by ``qcn`` commands, the demo and the tests. The private key never leaves this object: typed data and
prepared transactions come from the gateway, are signed here and only signatures / raw signed transactions go
back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the caller brings its httpx.Client; the CLI's help starts without httpx
    import httpx

__all__ = ["ApiError", "PartyClient"]


class ApiError(Exception):
    """The gateway answered with an error body; ``status`` and ``error`` (code, message, facts) say what."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {error.get('message', error)}")
        self.status = status
        self.error = error


class PartyClient:
    """``poll`` is called between two looks at a pending relayed transaction (default: sleep 50 ms; tests
    pass a function that runs the worker once); ``relay_timeout_s`` bounds the wait."""

    def __init__(
        self,
        http: httpx.Client,
        api_key: str,
        private_key: str | bytes | None = None,
        *,
        poll: Callable[[], object] | None = None,
        relay_timeout_s: float = 180.0,
    ) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {api_key}"}
        from eth_account import Account  # the CLI's help and read commands start without it

        self.account = Account.from_key(private_key) if private_key else None
        self.poll = poll or (lambda: time.sleep(0.05))
        self.relay_timeout_s = relay_timeout_s

    def _check(self, resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            try:
                error = resp.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"message": resp.text[:500]}
            raise ApiError(resp.status_code, error)
        return resp.json()

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self.http.get(path, headers=self.headers, params=params or None))

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST; a relay endpoint's 202 is followed to the end (see :meth:`wait_relayed`)."""
        headers = self.headers | kwargs.pop("headers", {})
        resp = self.http.post(path, json=json, headers=headers, **kwargs)
        body = self._check(resp)
        if resp.status_code == 202 and isinstance(body, dict) and "transactions" in body:
            final = self.wait_relayed(body)
            return final if body.get("many") else (final[-1]["result"] or final[-1])
        return body

    def wait_relayed(self, accepted: dict[str, Any]) -> list[dict[str, Any]]:
        """Poll every transaction of a relay 202 until it is mined; raises :class:`ApiError` (409) when one
        reverted or failed. Returns the final statuses (``result``: what the gateway did after mining)."""
        deadline = time.monotonic() + self.relay_timeout_s
        final = []
        for tx in accepted["transactions"]:
            status = tx
            while status["status"] == "pending":
                if time.monotonic() > deadline:
                    raise ApiError(504, {"code": "relay_timeout", "message": f"{tx['tx_hash']} still pending"})
                self.poll()
                status = self.get(tx["status_url"])
            if status["status"] != "mined":
                raise ApiError(409, {"code": "relay_failed", "message": status.get("error") or status["status"],
                                     "tx_hash": status["tx_hash"], "function": status["function"]})  # fmt: skip
            final.append(status)
        return final

    def delete(self, path: str) -> Any:
        return self._check(self.http.delete(path, headers=self.headers))

    def sign_typed_data(self, typed_data: dict[str, Any]) -> str:
        """EIP-712 signature (0x hex) by this party's key — exactly what any wallet would produce."""
        if self.account is None:
            raise ValueError("this client has no signing key")
        from eth_account.messages import encode_typed_data

        signed = self.account.sign_message(encode_typed_data(full_message=typed_data))
        return "0x" + bytes(signed.signature).hex()

    def sign_transactions(self, prepared: list[dict[str, Any]]) -> list[str]:
        """Sign prepared transactions (``[{description, tx}]`` from the gateway) locally; raw 0x hex out."""
        if self.account is None:
            raise ValueError("this client has no signing key")
        out = []
        for item in prepared:
            tx = {k: v for k, v in item["tx"].items() if k != "from"}
            out.append("0x" + bytes(self.account.sign_transaction(tx).raw_transaction).hex())
        return out

    def sign_and_relay(self, prepared: list[dict[str, Any]], relay_path: str) -> Any:
        """Sign what the gateway prepared and post it to ``relay_path`` for broadcasting."""
        return self.post(relay_path, json={"raw": self.sign_transactions(prepared)})
