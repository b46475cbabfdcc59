"""A party's side of the API: an API key for the gateway and, kept locally, the party's own signing key.

Used by ``qcn`` commands, the demo and the tests. The private key never leaves this object: typed data and
prepared transactions come from the gateway, are signed here and only signatures / raw signed transactions go
back.
"""

from __future__ import annotations

from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_typed_data

__all__ = ["ApiError", "PartyClient"]


class ApiError(Exception):
    """The gateway answered with an error body; ``status`` and ``error`` (code, message, facts) say what."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {error.get('message', error)}")
        self.status = status
        self.error = error


class PartyClient:
    def __init__(self, http: httpx.Client, api_key: str, private_key: str | bytes | None = None) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.account = Account.from_key(private_key) if private_key else None

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
        headers = self.headers | kwargs.pop("headers", {})
        return self._check(self.http.post(path, json=json, headers=headers, **kwargs))

    def delete(self, path: str) -> Any:
        return self._check(self.http.delete(path, headers=self.headers))

    def sign_typed_data(self, typed_data: dict[str, Any]) -> str:
        """EIP-712 signature (0x hex) by this party's key — exactly what any wallet would produce."""
        if self.account is None:
            raise ValueError("this client has no signing key")
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
