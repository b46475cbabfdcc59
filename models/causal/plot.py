"""Explanation plot: the causal graph laid out by tiers, the anomalous characteristic and the ranked
root-cause path highlighted. Returns PNG or SVG bytes.

Drawn through matplotlib's object API only (a ``Figure`` with its own Agg canvas, never ``pyplot``): the
gateway draws from several threads at once and pyplot's global figure registry is not thread-safe.
matplotlib is imported on first use, so importing the analysis core does not pay for it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping

import networkx as nx

from models.causal.constraints import DEFAULT_TIER_ORDER, Tier
from models.causal.graph import CausalGraph
from models.causal.ranking import RootCauseReport
from models.errors import InvalidInput

__all__ = ["plot_graph"]

_TIER_COLOURS = {
    Tier.MATERIAL: "#c7e9c0",
    Tier.ENVIRONMENT: "#c6dbef",
    Tier.EQUIPMENT: "#fdd0a2",
    Tier.PROCESS: "#dadaeb",
    Tier.QUALITY: "#fcbba1",
}


def plot_graph(
    graph: CausalGraph,
    tiers: Mapping[str, Tier],
    report: RootCauseReport | None = None,
    *,
    fmt: str = "svg",
    title: str | None = None,
) -> bytes:
    """Draw ``graph`` with one column per tier; highlight ``report``'s characteristic and top path."""
    if fmt not in ("svg", "png"):
        raise InvalidInput(f"fmt must be 'svg' or 'png', got {fmt!r}", field="fmt")
    g = graph.to_networkx()
    order = {t: i for i, t in enumerate(DEFAULT_TIER_ORDER)}
    # one column per (tier, causal depth inside the tier): nodes of a chain never sit on one line,
    # so a highlighted path cannot be mistaken for one running through unrelated nodes
    depth: dict[str, int] = {}
    for n in nx.lexicographical_topological_sort(g, key=lambda v: (order[tiers.get(v, Tier.PROCESS)], v)):
        t = tiers.get(n, Tier.PROCESS)
        same = [depth[p] + 1 for p in g.predecessors(n) if tiers.get(p, Tier.PROCESS) == t]
        depth[n] = max(same, default=0)
    for n in g.nodes:
        g.nodes[n]["layer"] = order[tiers.get(n, Tier.PROCESS)] * 100 + depth[n]
    pos = nx.multipartite_layout(g, subset_key="layer", align="vertical")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 7))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = [_TIER_COLOURS[tiers.get(n, Tier.PROCESS)] for n in g.nodes]
    path_edges: set[tuple[str, str]] = set()
    target = None
    top = None
    if report is not None:
        target = report.characteristic
        top = report.top.variable
        p = report.top.path
        path_edges = set(itertools.pairwise(p))
    nx.draw_networkx_edges(
        g,
        pos,
        ax=ax,
        edgelist=[e for e in g.edges if e not in path_edges],
        edge_color="#999999",
        arrows=True,
        arrowsize=10,
        width=0.8,
        connectionstyle="arc3,rad=0.08",
        node_size=900,
    )
    if path_edges:
        nx.draw_networkx_edges(
            g,
            pos,
            ax=ax,
            edgelist=sorted(path_edges),
            edge_color="#d62728",
            arrows=True,
            arrowsize=16,
            width=2.8,
            connectionstyle="arc3,rad=0.08",
            node_size=900,
        )
    edgecolors = ["#d62728" if n in (target, top) else "#555555" for n in g.nodes]
    widths = [3.0 if n in (target, top) else 0.8 for n in g.nodes]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colours, edgecolors=edgecolors, linewidths=widths, node_size=900)
    labels = {n: n.replace("_", "\n") for n in g.nodes}
    nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=6)
    for t, i in order.items():
        xs = [pos[n][0] for n in g.nodes if g.nodes[n]["layer"] // 100 == i]
        if xs:
            ax.text(
                float(sum(xs) / len(xs)),
                1.08,
                t.value,
                ha="center",
                fontsize=9,
                fontweight="bold",
                transform=ax.get_xaxis_transform(),
            )
    if report is not None:
        lines = [f"{c.rank}. {c.variable}  z={c.z:+.1f}  share={c.share:.0%}" for c in report.candidates[:3]]
        ax.text(
            0.0,
            -0.02,
            f"anomalous: {report.characteristic} ({report.deviation:+.3g} from nominal)\n" + "\n".join(lines),
            transform=ax.transAxes,
            fontsize=8,
            va="top",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#d62728"},
        )
    ax.set_title(title or f"causal graph {graph.sha256[:12]}")
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, bbox_inches="tight", dpi=110)
    return buf.getvalue()
