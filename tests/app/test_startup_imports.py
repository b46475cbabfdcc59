"""The gateway and the command line start without the analysis stack: it is imported where it is used.

Structural, not timed (the timing is ``scripts/bench_startup.py``): a fresh interpreter imports the module and
reports which heavy packages ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ["matplotlib", "pgmpy", "sklearn", "onnxruntime", "torch", "pandas", "scipy", "networkx"]
#: the chain stack (about 1.5 s of imports): loaded by the first chain call, a signature check or the CLI command
#: that signs; httpx (whose import pulls click and rich) by the first webhook or gateway call; Alembic by a migration
CHAIN = ["web3", "eth_account", "eth_keyfile", "eth_abi", "httpx", "rich", "alembic"]


def _loaded_after(statement: str, names: list[str]) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    return sorted(loaded & set(names))


def _heavy_modules_after(statement: str) -> list[str]:
    return _loaded_after(statement, HEAVY)


@pytest.mark.parametrize(
    "statement",
    [
        "import app.main",
        "from app.main import create_app",
        "import app.worker",
        "import app.services.batches",
        "import app.cli",
    ],
)
def test_starting_the_gateway_or_the_cli_imports_no_analysis_stack(statement: str) -> None:
    assert _heavy_modules_after(statement) == []


def test_the_analysis_stack_is_still_there_when_used() -> None:
    # the lazy names resolve to the real objects (a typo in a lazy table would only show up here)
    loaded = _heavy_modules_after(
        "import app.analysis as a, models.causal as c\n"
        "assert a.run_analysis.__module__ == 'app.analysis.engine'\n"
        "assert c.plot_graph.__module__ == 'models.causal.plot'\n"
        "assert all(getattr(c, n) is not None for n in c.__all__)\n"
        "assert all(getattr(a, n) is not None for n in a.__all__)"
    )
    assert "pandas" in loaded  # matplotlib itself waits for the first plot (tests/models/test_causal.py)


@pytest.mark.parametrize(
    "statement",
    [
        "from app.main import create_app",
        "import app.worker",
        "import app.routers.cases, app.routers.relay, app.routers.webhooks",
        "import app.services.relay, app.services.agreements, app.services.scheduler, app.services.indexer",
    ],
)
def test_the_gateway_starts_without_the_chain_stack(statement: str) -> None:
    assert _loaded_after(statement, CHAIN) == []


def test_qcn_help_loads_neither_the_gateway_nor_the_chain_stack() -> None:
    statement = "from app.cli import main\nsys.argv = ['qcn', '--help']\ntry:\n    main()\nexcept SystemExit:\n    pass"
    assert _loaded_after(statement, [*CHAIN, *HEAVY, "fastapi", "sqlalchemy", "uvicorn"]) == []


def test_the_chain_stack_is_still_there_when_used() -> None:
    # the lazy imports resolve: a signature made and recovered, a revert decoded, a client module's web3 types
    loaded = _loaded_after(
        "from chain.cases import Acceptance, sign_acceptance, acceptance_digest\n"
        "from chain.errors import decode_revert\n"
        "from eth_account import Account\n"
        "a = Acceptance(case_id=b'\\x01' * 32, verdict_hash=b'\\x02' * 32, accept=True, deadline=1)\n"
        "key = b'\\x11' * 32\n"
        "sig = sign_acceptance(a, key, chain_id=1, verifying_contract='0x' + '22' * 20)\n"
        "d = acceptance_digest(a, chain_id=1, verifying_contract='0x' + '22' * 20)\n"
        "assert sig == bytes(Account.unsafe_sign_hash(d, key).signature) and len(sig) == 65\n"
        "words = ['20'.rjust(64, '0'), '02'.rjust(64, '0'), '6869'.ljust(64, '0')]\n"
        "err = decode_revert(bytes.fromhex('08c379a0' + ''.join(words)))\n"
        "assert (err.name, err.arguments) == ('Error', {'message': 'hi'}), err",
        CHAIN,
    )
    assert "eth_account" in loaded and "eth_abi" in loaded
