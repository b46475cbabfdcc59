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


def _heavy_modules_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    return sorted(loaded & set(HEAVY))


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
