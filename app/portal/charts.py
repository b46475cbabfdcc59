"""Small server-rendered SVG charts for the portal (no JavaScript): lines or bars over labelled points.

Each chart is an ``<svg role="img">`` named by its ``<title>`` and described by its ``<desc>``; the page puts
the same numbers in a table next to it (:meth:`Chart.rows`), so a screen reader or a copy-paste gets them too.
Values are plotted on a linear axis from the series' minimum to maximum (reference lines included), padded
by 8 %; a missing value (``None``) breaks a line and leaves a bar out. Points sit evenly along x, or, given
``positions`` (timestamps), in proportion to them; a label is drawn only where it does not overlap the last.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

__all__ = ["Chart", "Series"]

# dark, distinguishable on white (contrast >= 4.5:1 for the legend text drawn in them)
_COLOURS = ("#0b5cad", "#a40e26", "#116329", "#7a4e00", "#5a32a3", "#1b1f24")
_W, _H = 560, 200
_L, _R, _T, _B = 80, 12, 12, 40  # room on the left for "50,000.00"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


@dataclass
class Chart:
    """One chart: ``labels`` along x, one or more ``series`` of the same length, optional reference lines."""

    chart_id: str
    title: str
    desc: str
    labels: Sequence[str]
    series: Sequence[Series]
    kind: str = "line"  # line | bar
    refs: Sequence[tuple[str, float]] = field(default_factory=tuple)
    fmt: Callable[[float | None], str] = lambda v: "—" if v is None else f"{v:g}"
    table_labels: Sequence[str] | None = None  # longer labels for the data table (e.g. the full date and time)
    positions: Sequence[float] | None = None  # a line over time: x proportional to these (e.g. timestamps)

    @property
    def empty(self) -> bool:
        return not any(v is not None for s in self.series for v in s.values)

    def rows(self) -> list[tuple[str, list[str]]]:
        """The data table: one row per label, one formatted cell per series."""
        labels = self.table_labels if self.table_labels is not None else self.labels
        return [(label, [self.fmt(s.values[i]) for s in self.series]) for i, label in enumerate(labels)]

    def _range(self) -> tuple[float, float]:
        values = [v for s in self.series for v in s.values if v is not None] + [v for _n, v in self.refs]
        lo, hi = min(values), max(values)
        if self.kind == "bar":
            lo = min(lo, 0.0)
        if hi == lo:
            hi, lo = hi + 1, lo - (0 if self.kind == "bar" else 1)
        pad = (hi - lo) * 0.08
        return (lo if self.kind == "bar" and lo == 0 else lo - pad), hi + pad

    def svg(self) -> Markup:
        tid, did = f"{self.chart_id}-title", f"{self.chart_id}-desc"
        parts = [
            f'<svg class="chart" id="{escape(self.chart_id)}" role="img" aria-labelledby="{tid} {did}" '
            f'viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" xmlns="http://www.w3.org/2000/svg">',
            f'<title id="{tid}">{escape(self.title)}</title><desc id="{did}">{escape(self.desc)}</desc>',
        ]
        if self.empty or not self.labels:
            parts.append(f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle" fill="#4a5562">—</text></svg>')
            return Markup("".join(parts))  # noqa: S704 - every text drawn in it went through escape()
        lo, hi = self._range()
        n = len(self.labels)
        plot_w, plot_h = _W - _L - _R, _H - _T - _B
        step = plot_w / n

        span = (max(self.positions) - min(self.positions)) if self.positions else 0.0

        def x(i: int) -> float:
            if self.positions and span > 0:  # proportional to time, half a point's room at each end
                edge = min(step / 2, 24.0)
                return _L + edge + (plot_w - 2 * edge) * (self.positions[i] - min(self.positions)) / span
            return _L + step * (i + 0.5)

        def y(v: float) -> float:
            return _T + plot_h * (1 - (v - lo) / (hi - lo))

        parts.append(
            f'<g aria-hidden="true" font-size="11" fill="#1b1f24">'
            f'<line x1="{_L}" y1="{_T + plot_h}" x2="{_W - _R}" y2="{_T + plot_h}" stroke="#8c959f"/>'
            f'<line x1="{_L}" y1="{_T}" x2="{_L}" y2="{_T + plot_h}" stroke="#8c959f"/>'
        )
        for v in (lo, (lo + hi) / 2, hi):
            parts.append(
                f'<text x="{_L - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{escape(self.fmt(v))}</text>'
                f'<line x1="{_L}" y1="{y(v):.1f}" x2="{_W - _R}" y2="{y(v):.1f}" stroke="#eaeef2"/>'
            )
        # label a point only where its label does not overlap the last one drawn (about 6.5 px per character)
        widest = max(len(label) for label in self.labels) * 6.5 + 8
        every = max(1, n // 10)
        last = -math.inf
        for i, label in enumerate(self.labels):
            if i % every == 0 and x(i) - last >= widest:
                last = x(i)
                anchor = "start" if x(i) - widest / 2 < _L - 8 else "end" if x(i) + widest / 2 > _W else "middle"
                parts.append(f'<text x="{x(i):.1f}" y="{_H - _B + 16}" text-anchor="{anchor}">{escape(label)}</text>')
        for name, v in self.refs:
            parts.append(
                f'<line x1="{_L}" y1="{y(v):.1f}" x2="{_W - _R}" y2="{y(v):.1f}" stroke="#7a4e00" '
                f'stroke-dasharray="5 4"/><text x="{_W - _R - 2}" y="{y(v) - 3:.1f}" text-anchor="end" '
                f'fill="#7a4e00">{escape(name)} {escape(self.fmt(v))}</text>'
            )
        k = len(self.series)
        for si, s in enumerate(self.series):
            colour = _COLOURS[si % len(_COLOURS)]
            if self.kind == "bar":
                bw = step * 0.7 / k
                for i, bar in enumerate(s.values):
                    if bar is None:
                        continue
                    top, base = y(max(bar, 0.0)), y(min(bar, 0.0) if lo < 0 else lo)
                    parts.append(
                        f'<rect x="{x(i) - step * 0.35 + bw * si:.1f}" y="{top:.1f}" width="{bw:.1f}" '
                        f'height="{max(base - top, 1):.1f}" fill="{colour}"/>'
                    )
            else:
                segment: list[str] = []
                for i, point in enumerate(s.values):
                    if point is None:
                        segment.append("")
                        continue
                    segment.append(f"{x(i):.1f},{y(point):.1f}")
                    parts.append(f'<circle cx="{x(i):.1f}" cy="{y(point):.1f}" r="3" fill="{colour}"/>')
                for run in " ".join(segment).split("  "):
                    if run.strip().count(",") > 1:
                        parts.append(
                            f'<polyline points="{run.strip()}" fill="none" stroke="{colour}" stroke-width="2"/>'
                        )
            parts.append(
                f'<rect x="{_L + 8 + si * 150}" y="{_H - 14}" width="10" height="10" fill="{colour}"/>'
                f'<text x="{_L + 22 + si * 150}" y="{_H - 5}">{escape(s.name)}</text>'
            )
        parts.append("</g></svg>")
        return Markup("".join(parts))  # noqa: S704 - every text drawn in it went through escape()
