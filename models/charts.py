"""Control chart plots (matplotlib, Agg backend, never a display) -> PNG or SVG bytes.

One chart per characteristic: points in order, centre line, ±3σ control limits (±1σ/±2σ zones
shaded), spec limits, and each rule violation marked at the point that completed it with a label
``R<n>`` (Nelson rule number) and a legend naming the rules that fired. SVG output keeps text as
text (``svg.fonttype = none``) so labels are searchable, and is deterministic (fixed hash salt,
no date metadata).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

from models.errors import InvalidInput
from models.spc import SPCResult
from models.spec import SpecLimit

__all__ = ["control_chart"]

_RULE_COLOURS = {
    1: "#d62728",
    2: "#9467bd",
    3: "#8c564b",
    4: "#e377c2",
    5: "#ff7f0e",
    6: "#bcbd22",
    7: "#17becf",
    8: "#7f7f7f",
}


def control_chart(
    result: SPCResult,
    *,
    spec: SpecLimit | None = None,
    fmt: Literal["png", "svg"] = "svg",
    title: str | None = None,
    labels: Sequence[str] | None = None,
    first_new: int | None = None,
    unit: str | None = None,
    dpi: int = 100,
) -> bytes:
    """Draw ``result`` (from an SPC chart's ``score``) as PNG or SVG bytes.

    ``labels`` names the points on the x axis (e.g. sample ids; default 0..n-1); ``first_new`` draws a
    divider before the first point of the current batch (points before it are history).
    """
    if fmt not in ("png", "svg"):
        raise InvalidInput(f"format must be 'png' or 'svg', got {fmt!r}", field="fmt")
    pts = result.points
    if labels is not None and len(labels) != len(pts):
        raise InvalidInput(f"{len(labels)} labels for {len(pts)} points", field="labels")
    lim = result.limits
    name = result.characteristic or "characteristic"
    xs = list(range(len(pts)))

    import matplotlib  # imported on first chart: importing the analysis core does not pay for it
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    for k, alpha in ((1, 0.10), (2, 0.06)):
        ax.axhspan(lim.center + (k - 1) * lim.sigma, lim.center + k * lim.sigma, color="tab:green", alpha=alpha, lw=0)
        ax.axhspan(lim.center - k * lim.sigma, lim.center - (k - 1) * lim.sigma, color="tab:green", alpha=alpha, lw=0)
    ax.plot(xs, pts, "-o", color="tab:blue", ms=3.5, lw=1, label=name, zorder=3)
    ax.axhline(lim.center, color="black", lw=1, label=f"CL {lim.center:.4g}")
    ax.axhline(lim.ucl, color="tab:red", lw=1, ls="-.", label=f"UCL {lim.ucl:.4g}")
    ax.axhline(lim.lcl, color="tab:red", lw=1, ls="-.", label=f"LCL {lim.lcl:.4g}")
    if spec is not None:
        if spec.usl is not None:
            ax.axhline(spec.usl, color="darkred", lw=1.5, ls="--", label=f"USL {spec.usl:g}")
        if spec.lsl is not None:
            ax.axhline(spec.lsl, color="darkred", lw=1.5, ls="--", label=f"LSL {spec.lsl:g}")
        if spec.nominal is not None:
            ax.axhline(spec.nominal, color="grey", lw=0.8, ls=":", label=f"nominal {spec.nominal:g}")
    if first_new is not None and 0 < first_new <= len(pts):
        ax.axvline(first_new - 0.5, color="grey", lw=0.8, ls="--")
        ax.text(
            first_new - 0.4,
            1.0,
            "batch",
            transform=ax.get_xaxis_transform(),
            va="top",
            fontsize=8,
            color="grey",
        )

    # mark each firing point once per rule; stack labels of several rules on one point
    stacked: dict[int, int] = {}
    fired: dict[int, str] = {}
    for v in result.violations:
        colour = _RULE_COLOURS.get(v.rule, "red")
        y = pts[v.index]
        ax.plot([v.index], [y], "o", ms=10, mfc="none", mec=colour, mew=1.8, zorder=4)
        level = stacked.get(v.index, 0)
        stacked[v.index] = level + 1
        ax.annotate(
            f"R{v.rule}",
            (v.index, y),
            xytext=(4, 6 + 10 * level),
            textcoords="offset points",
            fontsize=8,
            color=colour,
            zorder=5,
        )
        fired.setdefault(v.rule, v.name)
    for rule in sorted(fired):
        ax.plot([], [], "o", mfc="none", mec=_RULE_COLOURS.get(rule, "red"), label=f"R{rule}: {fired[rule]}")

    if labels is not None:
        step = max(1, len(xs) // 20)
        ax.set_xticks(xs[::step], [str(s) for s in labels[::step]], rotation=45, ha="right", fontsize=7)
    ax.set_xlabel("sample" if labels is not None else "point")
    ax.set_ylabel(f"{name} [{unit}]" if unit else name)
    kind = "Individuals" if lim.kind == "individuals" else f"X-bar (n={lim.subgroup_size})"
    ax.set_title(title or f"{kind} chart: {name}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "qcn"}):
        if fmt == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None})
        else:
            fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
