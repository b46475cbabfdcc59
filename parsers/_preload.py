"""Imported once by the forkserver of :mod:`parsers.guarded`, so every forked parse starts warm.

Loads every parser module and the heavy libraries they import lazily, and compiles the shipped DCC
schemas (libxml2, a few ms each) and the QIF 3.0 schema (~0.3 s) into the per-thread caches of this (the
main) thread; forked children inherit all of it. Never imported by ``parsers`` itself (importing
pdfplumber and openpyxl costs time).
"""

from __future__ import annotations

import importlib

_MODULES = (
    "parsers.csv_",
    "parsers.json_",
    "parsers.xlsx",
    "parsers.aqdef",
    "parsers.qif",
    "parsers.dcc",
    "parsers.pdf",
    "pdfplumber",
    "openpyxl",
    # lab-report signature checks (parsers.guarded.verify_signature_guarded)
    "parsers.signatures",
    "signxml",
    "pyhanko.pdf_utils.reader",
    "pyhanko.sign.validation",
    "pyhanko.sign.validation.dss",
    "pyhanko_certvalidator",
)


def _warm() -> None:
    for name in _MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional format missing only costs that format its warm start
            continue
    from parsers import dcc, qif

    for version in dcc.VALIDATED_VERSIONS:
        dcc._schema(version)
    qif._qif_schema()


_warm()
