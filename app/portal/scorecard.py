"""The OEM's supplier scorecard, per agreement, drawn as server-rendered SVG charts with their data tables.

From the chain (the record both sides trust): the quality score and deposit ratio of every evaluated quarter
(``Evaluated``), the required and posted deposit at each funding change (``FundingUpdated``, placed at its
block's timestamp, shown in the reader's locale), and each quarter's counters (batches, rejected,
non-conformities by class). From the stored batches: the Cpk of each characteristic over the last batches,
against the template's minimum Cpk for its class.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import Principal
from app.chainctx import ChainContext, b32
from app.db import Batch
from app.portal.charts import Chart, Series
from app.portal.i18n import Lang
from app.services import agreements as agreement_service

__all__ = ["block_times", "scorecard_rows"]

_LAST_BATCHES = 40
_LAST_QUARTERS = 8


def block_times(chain: ChainContext, blocks: list[int]) -> dict[int, int]:
    """The timestamp of each of these blocks, asked of the node once per distinct block (not remembered across
    requests: a dev chain restarted at the same addresses reuses block numbers)."""
    return {n: int(chain.w3.eth.get_block(n)["timestamp"]) for n in sorted(set(blocks))}


def _quarters(chain: ChainContext, agreement_id: str) -> list[tuple[int, Any]]:
    aid = b32(agreement_id)
    current = chain.agreements.current_quarter(aid)
    first = max(0, current - _LAST_QUARTERS + 1)
    return [(q, chain.agreements.quarter_counters(aid, q)) for q in range(first, current + 1)]


def _cpk_min(record: Any) -> dict[str, float]:
    """Characteristic id -> the template's minimum Cpk for its criticality class (absent: no minimum)."""
    template = agreement_service.template_of(record.template)
    mins = template.acceptance.min_cpk
    return {c.id: mins[c.criticality] for c in template.characteristics if c.criticality in mins}


def _charts(
    n: int,
    lang: Lang,
    *,
    batches: list[Batch],
    cpk_min: dict[str, float],
    quarters: list[tuple[int, Any]],
    evaluations: list[dict[str, Any]],
    funding: list[dict[str, Any]],
) -> dict[str, Any]:
    _ = lang.gettext

    def num(digits: int) -> Callable[[float | None], str]:
        return lambda v: lang.number(v, digits)

    def pct(v: float | None) -> str:
        return "—" if v is None else lang.number(v, 1) + " %"

    q_labels = [f"Q{e['quarter']}" for e in evaluations]
    charts: dict[str, Any] = {
        "score": Chart(
            f"sc{n}-score",
            _("Quality score per quarter"),
            _("Score 0 to 100 of each evaluated quarter, from the chain's Evaluated events."),
            q_labels,
            [Series(_("Score"), [float(e["score"]) for e in evaluations])],
            kind="bar",
            fmt=num(0),
        ),
        "ratio": Chart(
            f"sc{n}-ratio",
            _("Deposit ratio per quarter"),
            _("The deposit ratio set by each quarter's evaluation, in percent."),
            q_labels,
            [Series(_("Deposit ratio"), [e["newRatioBps"] / 100 for e in evaluations])],
            fmt=pct,
        ),
        "deposit": Chart(
            f"sc{n}-deposit",
            _("Required and posted deposit over time"),
            _("Required and posted deposit (tokens) at each funding change on chain, by block time."),
            [lang.short_datetime(f["timestamp"]) for f in funding],
            [
                Series(_("Required"), [int(f["required"]) / 1e18 for f in funding]),
                Series(_("Posted"), [int(f["deposited"]) / 1e18 for f in funding]),
            ],
            fmt=num(2),
            table_labels=[lang.datetime(f["timestamp"]) for f in funding],
            positions=[float(f["timestamp"]) for f in funding],
        ),
        "rejection": Chart(
            f"sc{n}-rejection",
            _("Incoming inspection: rejection rate per quarter"),
            _("Batches the OEM rejected at incoming inspection, as a share of those it inspected, counted on chain."),
            [f"Q{q}" for q, _c in quarters],
            [Series(_("Rejection rate"), [c.rejected / c.batches * 100 if c.batches else None for _q, c in quarters])],
            kind="bar",
            fmt=pct,
        ),
        "nc": Chart(
            f"sc{n}-nc",
            _("Non-conformities per quarter"),
            _("Confirmed non-conformities counted on chain in each quarter, by class."),
            [f"Q{q}" for q, _c in quarters],
            [
                Series(_("critical"), [float(c.nc_critical) for _q, c in quarters]),
                Series(_("major"), [float(c.nc_major) for _q, c in quarters]),
                Series(_("minor"), [float(c.nc_minor) for _q, c in quarters]),
            ],
            kind="bar",
            fmt=num(0),
        ),
    }
    cpk: dict[str, list[float | None]] = {}
    for i, b in enumerate(batches):
        for ch in (json.loads(b.assessment) if b.assessment else {}).get("characteristics") or []:
            cpk.setdefault(ch["id"], [None] * len(batches))[i] = ch.get("cpk")
    labels = [b.lot_id or b.id[:8] for b in batches]
    charts["cpk"] = [
        Chart(
            f"sc{n}-cpk-{k}",
            _("Cpk trend of %(name)s") % {"name": name},
            _("Cpk of each of the last batches, oldest first; the dashed line is the template's minimum."),
            labels,
            [Series("Cpk", values)],
            refs=[(_("minimum"), cpk_min[name])] if name in cpk_min else [],
            fmt=num(2),
        )
        for k, (name, values) in enumerate(sorted(cpk.items()))
    ]
    return charts


def scorecard_rows(
    *, session: Session, principal: Principal, chain: ChainContext | None, lang: Lang
) -> list[dict[str, Any]]:
    out = []
    for n, record in enumerate(agreement_service.list_agreements(session=session, principal=principal)):
        if record.status == "proposed":
            continue
        batches = list(
            session.scalars(
                select(Batch)
                .where(Batch.agreement_id == record.agreement_id)
                .order_by(Batch.created_at.desc())
                .limit(_LAST_BATCHES)
            )
        )
        batches.reverse()
        nonconforming = sum(
            int(ch.get("nonconforming") or 0)
            for b in batches
            for ch in (json.loads(b.assessment) if b.assessment else {}).get("characteristics") or []
        )
        rejected = sum(1 for b in batches if b.verdict == 2)
        status = None
        evaluations: list[dict[str, Any]] = []
        funding: list[dict[str, Any]] = []
        ncs: list[dict[str, Any]] = []
        quarters: list[tuple[int, Any]] = []
        if chain is not None:
            status = agreement_service.agreement_status(chain=chain, record=record)
            events = agreement_service.history(
                chain=chain, record=record, names=("Evaluated", "FundingUpdated", "NonConformityRecorded")
            )
            evaluations = [e for e in events if e["event"] == "Evaluated"]
            funding = [e for e in events if e["event"] == "FundingUpdated"]
            times = block_times(chain, [f["blockNumber"] for f in funding])
            funding = [{**f, "timestamp": times[f["blockNumber"]]} for f in funding]
            ncs = [e for e in events if e["event"] == "NonConformityRecorded"]
            if status.get("ratio_bps") is not None:
                quarters = _quarters(chain, record.agreement_id)
        out.append(
            {
                "agreement": record,
                "batches": len(batches),
                "rejected": rejected,
                "rejection_rate": rejected / len(batches) if batches else None,
                "nonconforming": nonconforming,
                "status": status,
                "evaluations": evaluations,
                "non_conformities": ncs,
                "charts": _charts(
                    n,
                    lang,
                    batches=batches,
                    cpk_min=_cpk_min(record),
                    quarters=quarters,
                    evaluations=evaluations,
                    funding=funding,
                ),
            }
        )
    return out
