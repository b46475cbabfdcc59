"""The public surface of every module is declared in ``__all__`` and it is true (httpx's
tests/test_exported_members.py habit): each listed name exists and is listed once, and every name one qcn
module imports from another is in that module's ``__all__`` (names starting with ``_`` are private by
convention and not part of any surface). And the product packages never import ``scripts`` or ``tests`` nor
touch ``sys.path``: an installed qcn has neither."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

PACKAGES = ["app", "chain", "parsers", "models"]
# Alembic revision scripts are loaded by Alembic, not imported as a surface
SKIP = ("app.migrations",)


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if not info.name.startswith(SKIP):
                names.append(info.name)
    return sorted(names)


MODULES = _modules()


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_once(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    assert [n for n in exported if not hasattr(module, n)] == [], f"{name}.__all__ names what it does not have"


def _imports_between_modules(name: str) -> list[tuple[str, str, int]]:
    module = importlib.import_module(name)
    path = Path(module.__file__ or "")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] in PACKAGES
        ):
            out += [(node.module, alias.name, node.lineno) for alias in node.names]
    return out


@pytest.mark.parametrize("name", MODULES)
def test_names_imported_from_another_module_are_in_its_all(name: str) -> None:
    undeclared = []
    for source, imported, line in _imports_between_modules(name):
        if imported.startswith("_") or imported == "*":
            continue
        if importlib.util.find_spec(f"{source}.{imported}") if _is_package(source) else False:
            continue  # a submodule, not a member
        target = importlib.import_module(source)
        exported = getattr(target, "__all__", None)
        if exported is not None and imported not in exported:
            undeclared.append(f"line {line}: {imported} from {source}")
    assert undeclared == [], f"{name} imports names their modules do not declare"


def _is_package(name: str) -> bool:
    return hasattr(importlib.import_module(name), "__path__")


def test_the_walk_found_the_packages() -> None:
    assert {"app.cli", "app.cli_party", "chain.canonical", "parsers.dcc", "models.causal.plot"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_product_code_never_imports_scripts_or_tests(name: str) -> None:
    module = importlib.import_module(name)
    tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.split(".")[0] in ("scripts", "tests")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("scripts", "tests"):
            bad.append(node.module)
        elif isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.path":
            bad.append(f"sys.path at line {node.lineno}")
    assert bad == []
