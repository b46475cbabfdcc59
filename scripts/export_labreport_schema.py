"""Write docs/labreport.schema.json from the LabReport model (run after changing parsers/report_model.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parsers.report_model import labreport_json_schema  # noqa: E402

TARGET = ROOT / "docs" / "labreport.schema.json"


def render() -> str:
    """The schema file's exact text."""
    return json.dumps(labreport_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
