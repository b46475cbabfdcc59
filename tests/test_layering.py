"""Dependencies point one way: app -> chain, parsers, models.

chain, parsers and models never import app, and do not import each other, with one named exception:
`chain.canonical`, the canonical-JSON hash format (pure standard library + rfc8785, no web3), is the
one definition of how any qcn document is hashed, so models hash their artifacts and verdicts with it
rather than keeping a second copy that could drift.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("chain", "parsers", "models")
ALLOWED = {("models", "chain.canonical")}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_library_packages_import_neither_app_nor_each_other(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in _imports(path):
            top = module.split(".")[0]
            if top == package or top not in {"app", *PACKAGES}:
                continue
            if (package, module) not in ALLOWED:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_the_allowed_exception_stays_free_of_the_chain_stack() -> None:
    imported = {m.split(".")[0] for m in _imports(ROOT / "chain" / "canonical.py")}
    assert imported.isdisjoint({"web3", "eth_account", "eth_abi", "app", "parsers", "models"})
