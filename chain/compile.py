"""Compile the Solidity sources with the pinned npm solc and write deterministic artifacts.

``python -m chain.compile`` (re)writes ``contracts/artifacts/<Name>.json`` for every concrete contract
under ``contracts/``. Compilation runs solc-js (``node_modules/solc``) through ``chain/solc_compile.mjs``
with a standard-JSON input: optimizer on, ``evmVersion`` "prague" (py-evm's last fork; anvil runs with
``--hardfork prague``), metadata hash "none" so the bytecode depends only on the code, never on comments or
paths. Source unit names are relative (``contracts/X.sol``, ``@openzeppelin/...``): no absolute path
reaches an artifact. Artifacts are JSON with sorted keys, so recompiling is byte-identical.

Nothing here runs at import; the rest of the package only reads the artifact files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from chain.errors import CompilationError

__all__ = [
    "ARTIFACT_FORMAT",
    "COMPILER_SETTINGS",
    "PROJECT_ROOT",
    "SOLC_VERSION",
    "compile_contracts",
    "main",
    "render_artifact",
    "standard_json_input",
    "write_artifacts",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOLC_VERSION = "0.8.37"
ARTIFACT_FORMAT = "qcn-artifact-1"
_HELPER = Path(__file__).resolve().parent / "solc_compile.mjs"
_SOURCE_DIR = "contracts"
_SKIP_DIRS = {"artifacts", "forge"}  # forge: the Foundry invariant suite and forge-std (not deployed)

COMPILER_SETTINGS: dict[str, Any] = {
    "evmVersion": "prague",
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 1_000},
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.immutableReferences",
            ]
        },
    },
}


def _source_files(root: Path) -> list[Path]:
    base = root / _SOURCE_DIR
    return sorted(p for p in base.rglob("*.sol") if not _SKIP_DIRS.intersection(p.relative_to(base).parts[:-1]))


def standard_json_input(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The solc standard-JSON input for all sources under ``<root>/contracts`` (relative unit names)."""
    sources = {p.relative_to(root).as_posix(): {"content": p.read_text(encoding="utf-8")} for p in _source_files(root)}
    if not sources:
        raise CompilationError([f"no Solidity sources under {root / _SOURCE_DIR}"])
    return {"language": "Solidity", "sources": sources, "settings": COMPILER_SETTINGS}


def _run_solc(root: Path, input_json: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise CompilationError(["node is not on PATH (needed for the npm solc compiler)"])
    if not (root / "node_modules" / "solc").is_dir():
        raise CompilationError([f"npm solc not installed under {root / 'node_modules'} (run `npm ci`)"])
    proc = subprocess.run(  # fixed argv, no shell
        [node, str(_HELPER), str(root)],
        input=json.dumps(input_json),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise CompilationError([f"solc helper exited with {proc.returncode}: {proc.stderr.strip()}"])
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def compile_contracts(root: Path = PROJECT_ROOT) -> dict[str, dict[str, Any]]:
    """Compile every source under ``<root>/contracts``; return artifacts by contract name.

    Only concrete contracts defined in our sources get an artifact (interfaces, abstract contracts and
    OpenZeppelin code do not). Raises ``CompilationError`` with solc's formatted messages on any error
    or on a compiler version other than the pinned one.
    """
    input_json = standard_json_input(root)
    result = _run_solc(root, input_json)
    version = str(result["version"])
    if not version.startswith(SOLC_VERSION + "+"):
        raise CompilationError([f"solc {version} found, {SOLC_VERSION} is pinned (node_modules/solc)"])
    output = result["output"]
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompilationError([str(e.get("formattedMessage", e.get("message"))) for e in errors])
    settings = {k: v for k, v in COMPILER_SETTINGS.items() if k != "outputSelection"}
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name in sorted(output.get("contracts", {})):
        if source_name not in input_json["sources"]:
            continue
        source_hash = hashlib.sha256(input_json["sources"][source_name]["content"].encode()).hexdigest()
        if source_name.startswith(f"{_SOURCE_DIR}/lib/"):
            continue  # internal libraries are inlined into the contracts that use them: no artifact
        for name, contract in sorted(output["contracts"][source_name].items()):
            bytecode = contract["evm"]["bytecode"]["object"]
            if not bytecode:
                continue  # interface or abstract contract
            if name in artifacts:
                raise CompilationError([f"contract name {name} defined twice ({source_name})"])
            artifacts[name] = {
                "format": ARTIFACT_FORMAT,
                "contractName": name,
                "sourceName": source_name,
                "sourceHash": "sha256:" + source_hash,
                "abi": contract["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
                # byte ranges of the runtime code that the constructor fills in (immutables): masked when the
                # address book is checked against the chain
                "immutableRanges": sorted(
                    [int(r["start"]), int(r["length"])]
                    for refs in contract["evm"]["deployedBytecode"].get("immutableReferences", {}).values()
                    for r in refs
                ),
                "compiler": {"name": "solc-js", "version": version, "settings": settings},
            }
    return artifacts


def render_artifact(artifact: dict[str, Any]) -> str:
    """The exact file text of an artifact (sorted keys, 2-space indent, trailing newline)."""
    return json.dumps(artifact, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_artifacts(artifacts: dict[str, dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<Name>.json`` for each artifact and remove stale ones; return the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = out_dir / f"{name}.json"
        path.write_text(render_artifact(artifact), encoding="utf-8")
        written.append(path)
    for stale in out_dir.glob("*.json"):
        if stale.stem not in artifacts:
            stale.unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    """CLI: compile and write artifacts (default ``contracts/artifacts``)."""
    parser = argparse.ArgumentParser(prog="python -m chain.compile", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / _SOURCE_DIR / "artifacts")
    args = parser.parse_args(argv)
    try:
        written = write_artifacts(compile_contracts(), args.out)
    except CompilationError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
