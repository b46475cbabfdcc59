"""Fill ``.cache/reports/public/`` with the public corpus documents listed in the manifest (not committed).

Each document is taken from a local clone or bare mirror of its repository (``--mirrors DIR`` holding
``<owner>+<name>/repo`` or ``<owner>/<name>`` git directories) at the manifest's commit and path, and kept
only if its sha256 matches the manifest. Without a mirror the raw GitHub URL to download is printed.

Usage: ``.venv/bin/python scripts/fetch_report_corpus.py --mirrors /path/to/mirrors``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ROOT / "tests" / "fixtures" / "reports" / "public"
CACHE = ROOT / ".cache" / "reports" / "public"


def _git_dir(mirrors: Path | None, repo: str) -> Path | None:
    if mirrors is None:
        return None
    owner, name = repo.split("/", 1)
    for cand in (mirrors / f"{owner}+{name}" / "repo", mirrors / owner / name / ".git", mirrors / owner / name):
        if (cand / "HEAD").is_file():
            return cand
    return None


def main() -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mirrors", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((PUBLIC / "manifest.json").read_text(encoding="utf-8"))
    have = fetched = 0
    for doc in manifest["documents"]:
        if doc.get("committed_path"):
            continue
        target = args.cache / doc["file"]
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == doc["sha256"]:
            have += 1
            continue
        git_dir = _git_dir(args.mirrors, doc["repo"])
        if git_dir is not None:
            show = subprocess.run(
                ["git", "--git-dir", str(git_dir), "show", f"{doc['commit']}:{doc['path']}"],
                capture_output=True,
                check=False,
            )
            if show.returncode == 0 and hashlib.sha256(show.stdout).hexdigest() == doc["sha256"]:
                target.write_bytes(show.stdout)
                fetched += 1
                continue
        url = f"https://raw.githubusercontent.com/{doc['repo']}/{doc['commit']}/{quote(doc['path'])}"
        print(f"missing {doc['file']}: download {url} (sha256 {doc['sha256']})")
    print(f"{have} already cached, {fetched} fetched from mirrors, into {args.cache}")


if __name__ == "__main__":
    main()
