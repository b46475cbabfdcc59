"""Layout-free reading of lab report pages: tables and header fields from word positions alone.

No layout profile is needed. The page's upright words (rotated margin text is set aside before this module
sees the page) are grouped into lines and each line into *cells* by horizontal gaps. Then:

* **tables**: a line whose cells name at least two kinds of column (:data:`parsers.lexicon.COLUMN_TERMS`,
  six languages) -- one of them a result, limit, MDL or verdict -- starts a header *band*: that line plus the
  header lines right above/below it without values (two-level headers such as ``Result`` over ``1#  2#``,
  or units under the names). Columns come from the band's cells (cells overlapping horizontally form one
  column; an upper cell spanning several columns is their group label). Two quantity columns in one band
  are two tables side by side. Rows are the following lines whose cells, assigned to columns by overlap,
  put a value-shaped text (numbers with decimal point or comma, ``N.D.``, ``<0.5``, ``≤ 1000``,
  ``Negative``, ranges) under a result column. A line with text only in the first column is a section /
  test part and is carried to the rows below it -- also across a page break: a table left open at the end
  of a page continues on the next one, with or without a repeated header. An empty method cell repeats the
  method above it (merged cells). Columns without a known header are classified by the shape of their
  values. Rows whose label cell is a result/uncertainty word followed by several values are read as a
  transposed table (test points in columns).
* **header fields**: ``Label: value`` in a cell, a label cell followed by its value cell on the same line
  (grids), a label with its value on the line below (label above value); bilingual labels (``Auftraggeber
  / Customer``, ``委托单位 Client``) and letter-spaced labels match too. Dates are normalised from
  Chinese, German, ISO and US forms.
* **accreditation**: body and number of the laboratory's own accreditation; numbers on lines about a CMA
  licence or a traceability statement (a reference standard's lab) are ignored.

Every value carries a confidence (see :class:`parsers.report_model.Field`).
"""

from __future__ import annotations

import difflib
import itertools
import re
import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from parsers.lexicon import (
    ACCREDITATION_DISTRACTORS,
    ACCREDITATION_PATTERNS,
    DUAL_VALUE,
    FIELD_LABELS,
    classify_header,
    norm_label,
    normalise_date,
    value_shape,
)
from parsers.pdf_text import Line, Word
from parsers.provenance import Provenance
from parsers.report_model import Accreditation, Field, LabReport, ReportItem, Result, Review

__all__ = ["Cell", "Extraction", "extract_layout", "judge", "merge_layout", "split_cells"]

_RESULT_KEYS = {"value"}
_HEADER_SIGNAL = {"value", "mdl", "limit", "verdict", "uncertainty", "lower", "upper", "unit", "method"}
_MAX_GAP_LINES = 5  # non-row lines tolerated inside a table before it is closed
_CONTINUATION_SKIP = 14  # lines at the top of a page skipped (running headers) while a table is open


@dataclass(slots=True)
class Cell:
    """Words of one line that belong together (closer than a column gap)."""

    words: list[Word]
    page: int

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def x0(self) -> float:
        return self.words[0].x0

    @property
    def x1(self) -> float:
        return max(w.x1 for w in self.words)

    @property
    def top(self) -> float:
        return min(w.top for w in self.words)

    @property
    def bottom(self) -> float:
        return max(w.bottom for w in self.words)

    def bbox(self) -> tuple[float, float, float, float]:
        return (round(self.x0, 2), round(self.top, 2), round(self.x1, 2), round(self.bottom, 2))


def _gap_threshold(words: list[Word]) -> float:
    heights = [w.bottom - w.top for w in words if w.bottom > w.top]
    h = statistics.median(heights) if heights else 10.0
    return max(4.5, 0.75 * h)


def split_cells(line: Line) -> list[Cell]:
    """Cut a line into cells where the horizontal gap is wider than a column gap (about one font height)."""
    if not line.words:
        return []
    thr = _gap_threshold(line.words)
    cells: list[list[Word]] = [[line.words[0]]]
    for w in line.words[1:]:
        prev = cells[-1][-1]
        if w.x0 - prev.x1 > thr:
            cells.append([w])
        else:
            cells[-1].append(w)
    return [Cell(ws, line.page) for ws in cells]


@dataclass
class _Col:
    key: str | None
    x0: float
    x1: float
    header: str
    unit: str | None = None
    group: str | None = None  # label of an upper header cell spanning several columns
    sample: str | None = None  # sub-label under a result group ("1#", "2#")

    @property
    def mid(self) -> float:
        return (self.x0 + self.x1) / 2


@dataclass
class _Table:
    cols: list[_Col]
    x0: float
    x1: float
    page: int
    conf: float
    section: Field[str] | None = None
    method: Field[str] | None = None
    gap: int = 0
    rows: int = 0
    closed: bool = False
    frag: list[Cell] | None = None  # label-column text of the line just above (a label wrapped upwards)
    open_label: list[int] | None = None  # results whose label has an unclosed bracket (wraps downwards)
    # "平行：73.7" / "撕裂力 … 符合" / "垂直：87.9": named values in the result column around a row without one
    subs: list[tuple[str, str, list[Cell]]] = field(default_factory=list)
    sub_parent: tuple[list[Cell], str] | None = None
    last_row: list[int] = field(default_factory=list)  # results of the row read last, and its label cells
    last_cells: list[Cell] = field(default_factory=list)
    category: tuple[str, float, float] | None = None  # merged category cell: text, x0, bottom
    wide_left: bool | None = None  # names left of a centred name header (decided on the first row)


@dataclass
class Extraction:
    """What the layout-free pass found."""

    results: list[Result] = field(default_factory=list)
    fields: dict[str, Field[str]] = field(default_factory=dict)
    accreditation: Accreditation | None = None
    warnings: list[str] = field(default_factory=list)


def _prov(sha: str, page: int, bbox: tuple[float, float, float, float]) -> Provenance:
    return Provenance(file_sha256=sha, kind="pdf", page=page, bbox=bbox)


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


# ---------------------------------------------------------------------------------------------- header bands


def _classified(cells: list[Cell]) -> list[tuple[Cell, str | None, str | None]]:
    return [(c, *classify_header(c.text)) for c in cells]


def _is_header_line(cells: list[Cell]) -> bool:
    if len(cells) < 2:
        return False
    cls = _classified(cells)
    keys = [k for _, k, _ in cls if k is not None]
    if len(set(keys)) < 2 and not (len(keys) >= 3):
        return False
    if not any(k in _HEADER_SIGNAL for k in keys):
        return False
    # a header has few values of its own ("Result 1#" is fine, a data row is not)
    shaped = sum(1 for c in cells if value_shape(c.text) in ("number", "bound"))
    # a summary printed beside the header on the same baseline adds cells: judge the named ones
    return shaped * 2 < len(cells) and len(keys) * 3 >= len(cells)


def _has_values(cells: list[Cell]) -> bool:
    return any(value_shape(c.text) is not None for c in cells)


def _near(cells: list[Cell], x0: float, x1: float) -> list[Cell]:
    """Cells of a neighbouring line that can belong to a header spanning ``x0..x1`` (not a table beside it):
    close to it, or a quantity/sample header word further left (a wide first column)."""
    return [
        c
        for c in cells
        if c.x0 <= x1 + 30
        and (c.x1 >= x0 - 90 or (len(c.text) <= 30 and classify_header(c.text)[0] in ("quantity", "sample")))
    ]


def _band_columns(band: list[list[Cell]]) -> list[_Col]:
    """Columns of a header band (lines top to bottom): overlapping cells stack, wide upper cells group."""
    base_i = max(range(len(band)), key=lambda i: len(band[i]))
    base = [[c] for c in band[base_i]]
    groups: dict[int, str] = {}
    # sub-labels below a base cell ("Result" over "1#  2#"): the base cell becomes their group label
    for li in range(base_i + 1, len(band)):
        j = 0
        while j < len(base):
            head = base[j][0]
            subs = [c for c in band[li] if _overlap(c.x0, c.x1, head.x0 - 2, max(head.x1, head.x0 + 40) + 30) > 0]
            subs = [
                c
                for c in subs
                if not any(_overlap(c.x0, c.x1, o[0].x0, o[0].x1) > 0.5 for o in base if o is not base[j])
            ]
            if len(subs) >= 2 and classify_header(head.text)[0] in ("value", None):
                new = [[c] for c in sorted(subs, key=lambda c: c.x0)]
                base[j : j + 1] = new
                for k in range(j, j + len(new)):
                    groups[id(new[k - j][0])] = head.text
                band[li] = [c for c in band[li] if c not in subs]
                j += len(new)
            else:
                j += 1
    # group labels above that are narrower than their group ("Thickness (µm)" centred over LSL USL
    # Measured): each base cell near enough joins the closest label's group
    for li in range(base_i):
        ups = band[li]
        if len(ups) < 2 or len(base) < 2 * len(ups):
            continue
        if any(classify_header(u.text)[0] is not None or u.text.startswith(("(", "[")) for u in ups):
            continue  # header words or units, not parameter names
        if any(sum(1 for col in base if _overlap(u.x0, u.x1, col[0].x0, col[0].x1) > 0.5) >= 2 for u in ups):
            continue  # wide labels: handled by overlap below
        centers = [(u.x0 + u.x1) / 2 for u in ups]
        half = min(b - a for a, b in itertools.pairwise(centers)) / 2
        for col in base:
            cx = (col[0].x0 + col[0].x1) / 2
            k = min(range(len(ups)), key=lambda n: abs(centers[n] - cx))
            if abs(centers[k] - cx) <= half and classify_header(col[0].text)[0] in (
                "lower",
                "upper",
                "value",
                "limit",
                None,
            ):
                groups[id(col[0])] = ups[k].text
        band[li] = []
    for li, cells in enumerate(band):
        if li == base_i:
            continue
        for c in cells:
            hits = [j for j, col in enumerate(base) if _overlap(c.x0, c.x1, col[0].x0, col[0].x1) > 0.5]
            if len(hits) >= 2 and li < base_i:
                for j in hits:
                    groups[id(base[j][0])] = c.text
            elif len(hits) >= 1:
                base[hits[0]].append(c)
            else:
                base.append([c])
    base.sort(key=lambda cs: cs[0].x0)
    cols: list[_Col] = []
    for cs in base:
        cs_sorted = sorted(cs, key=lambda c: c.top)
        text = " ".join(c.text for c in cs_sorted)
        key, unit = classify_header(text)
        if key is None:
            # "LOD" over "(MG/G)": classify the first stacked cell, the rest is its unit
            key, unit2 = classify_header(cs_sorted[0].text)
            rest = " ".join(c.text for c in cs_sorted[1:]).strip("() ")
            unit = unit or unit2 or (rest if key and rest and len(rest) <= 12 else None)
        x0 = min(c.x0 for c in cs)
        x1 = max(c.x1 for c in cs)
        cols.append(_Col(key=key, x0=x0, x1=x1, header=text, unit=unit))
    # group labels: "Result" over "1#" "2#" -> two result columns, samples 1# and 2#
    for new_j, cs in enumerate(base):
        gid = next((id(c) for c in cs if id(c) in groups), None)
        if gid is not None:
            gcol = cols[new_j]
            gkey, gunit = classify_header(groups[gid])
            gcol.group = groups[gid]
            if gkey == "value" and gcol.key in (None, "sample", "quantity"):
                gcol.sample = gcol.header
                gcol.key = "value"
                gcol.unit = gcol.unit or gunit
            elif gkey is None and gcol.key in ("lower", "upper", "value", "limit", None):
                gcol.key = gcol.key or "value"  # grouped columns of one parameter (wide inspection tables)
    return cols


def _finish_columns(cols: list[_Col]) -> list[list[_Col]]:
    """Decide the quantity column(s); two quantity columns -> two tables side by side."""
    q_idx = [i for i, c in enumerate(cols) if c.key == "quantity"]
    if not q_idx:
        free = [i for i, c in enumerate(cols) if c.key is None and c.group is None]
        if free and free[0] == 0:
            cols[0].key = "quantity"
            q_idx = [0]
        elif cols and cols[0].key == "sample" and any(c.group for c in cols):
            q_idx = []  # grouped landscape table: the row label is the sample, the group the quantity
        else:
            return []
    if len(q_idx) <= 1:
        return [cols]
    parts: list[list[_Col]] = []
    bounds = [*q_idx, len(cols)]
    for a, b in itertools.pairwise(bounds):
        parts.append(cols[a:b])
    if q_idx[0] > 0:
        parts[0] = cols[: q_idx[0]] + parts[0]
    # "Analyte | Cannabinoid | Conc." is one table with two name columns, not two tables: a part without a
    # result column joins the next one, whose quantity column is then a plain description
    merged: list[list[_Col]] = []
    pending: list[_Col] = []
    for part in parts:
        has_value = any(c.key == "value" or c.group for c in part)
        if not has_value:
            pending += part
            continue
        if pending:
            for c in part:
                if c.key == "quantity":
                    c.key = None
                    break
            part = pending + part
            pending = []
        merged.append(part)
    return merged


# ---------------------------------------------------------------------------------------------- rows


def _left_reach(table: _Table) -> float:
    """How far left of its header a table's cells may start: names are often left-aligned under a centred
    "Analyte" header, so a name column may reach further -- decided on the table's first row (a merged
    category cell further left of a table whose names sit under the header is not a name)."""
    if table.wide_left is False or not (table.cols and table.cols[0].key in ("quantity", "sample")):
        return 8.0
    return 45.0


def _assign(cells: list[Cell], table: _Table, left: float | None = None) -> dict[int, list[Cell]]:
    out: dict[int, list[Cell]] = {}
    left = _left_reach(table) if left is None else left
    for c in cells:
        if c.x1 < table.x0 - left or c.x0 > table.x1 + 8:
            continue
        if c.x1 < table.x0 - 8 and value_shape(c.text):
            continue  # a value left of the table belongs to a table beside it, not to the name column
        best_j, best = -1, -1e9
        for j, col in enumerate(table.cols):
            ov = _overlap(c.x0, c.x1, col.x0, col.x1)
            score = ov if ov > 0 else -min(abs(c.x0 - col.x1), abs(c.x1 - col.x0), abs((c.x0 + c.x1) / 2 - col.mid))
            if score > best:
                best_j, best = j, score
        if best_j >= 0:
            out.setdefault(best_j, []).append(c)
    return out


def _join_dual_values(cells: list[Cell]) -> list[Cell]:
    """Put back together a value that widely spaced words (OCR) cut into cells: "938.3 | mg/g | (93.83 | %)"."""
    out: list[Cell] = []
    i = 0
    while i < len(cells):
        for k in range(min(len(cells), i + 4), i + 1, -1):
            if DUAL_VALUE.match(" ".join(c.text for c in cells[i:k])):
                out.append(Cell([w for c in cells[i:k] for w in c.words], cells[i].page))
                i = k
                break
        else:
            out.append(cells[i])
            i += 1
    return out


def _limits(text: str) -> tuple[str | None, str | None]:
    t = text.replace(",", ".").replace("−", "-")
    m = re.match(r"^\s*(?:≤|<=|<|max\.?|最大|höchstens|≦)\s*([-+]?\d+(?:\.\d+)?)", t, re.IGNORECASE)
    if m:
        return None, m.group(1)
    m = re.match(r"^\s*(?:≥|>=|>|min\.?|最小|mindestens|≧)\s*([-+]?\d+(?:\.\d+)?)", t, re.IGNORECASE)
    if m:
        return m.group(1), None
    m = re.match(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(?:-|–|~|～|to|bis|至|\.\.\.)\s*([-+]?\d+(?:\.\d+)?)", t)
    if m:
        return m.group(1), m.group(2)
    return None, None


def _num_text(text: str) -> str:
    """Literal value with a decimal comma turned into a point (``0,25`` -> ``0.25``); other text as printed."""
    t = " ".join(text.split())
    if re.fullmatch(r"[<>≤≥]?\s*[-+−]?\d+,\d+\s*%?", t):
        t = t.replace(",", ".")
    return t


class _Reader:
    def __init__(self, sha: str) -> None:
        self.sha = sha
        self.out = Extraction()
        self.open: list[_Table] = []

    def field(self, cells: list[Cell], conf: float, text: str | None = None) -> Field[str]:
        x0 = min(c.x0 for c in cells)
        top = min(c.top for c in cells)
        x1 = max(c.x1 for c in cells)
        bottom = max(c.bottom for c in cells)
        return Field[str](
            value=text if text is not None else " ".join(c.text for c in cells),
            provenance=_prov(self.sha, cells[0].page, (round(x0, 2), round(top, 2), round(x1, 2), round(bottom, 2))),
            confidence=round(conf, 3),
        )

    def try_row(self, table: _Table, cells: list[Cell]) -> bool:
        cells = _join_dual_values(cells)
        assigned = _assign(cells, table, 8.0 if table.wide_left is None else None)
        if not assigned:
            return False
        if table.wide_left is None and _left_reach(table) > 8.0:
            wide = _assign(cells, table, _left_reach(table))
            if 0 not in assigned and 0 in wide and len(wide) >= 2:
                assigned, table.wide_left = wide, True
            elif 0 in assigned and len(assigned) >= 2:
                table.wide_left = False
        qcol = next((j for j, c in enumerate(table.cols) if c.key == "quantity"), None)
        scol = next((j for j, c in enumerate(table.cols) if c.key == "sample"), None)
        label_j = qcol if qcol is not None else scol
        value_js = [
            j
            for j, c in enumerate(table.cols)
            if c.key in _RESULT_KEYS and j in assigned and value_shape(" ".join(x.text for x in assigned[j]))
        ]
        if not value_js and any(table.cols[j].key == "verdict" for j in assigned):
            # a row with a verdict ("符合", "Pass") reports a result even in words ("无异常", "no damage")
            value_js = [
                j
                for j, c in enumerate(table.cols)
                if c.key in _RESULT_KEYS and j in assigned and _qualitative(" ".join(x.text for x in assigned[j]))
            ]
        label_cells = assigned.get(label_j, []) if label_j is not None else []
        label = " ".join(c.text for c in label_cells).strip()
        if not value_js and not label_cells:
            # a merged category cell left of the name column ("气味" between "干态" and "湿态")
            outside = [c for c in cells if c.x1 < table.x0 - _left_reach(table)]
            if len(outside) == 1:
                label_cells, label = outside, outside[0].text.strip()
        if not value_js and self.named_values(table, assigned, label_cells, label):
            return True
        if not value_js:
            if label and self.continue_label(table, label_cells, label):
                return True
            table.frag = label_cells or None
            if label and any(table.cols[j].key in _RESULT_KEYS for j in assigned):
                table.gap = 0  # a row of the table with nothing to report ("/", not applicable)
                return True
            # text only under the label column: a section / test part heading (or a wrapped name)
            only_label = label and all(j == label_j for j in assigned)
            if only_label and len(label) <= 80 and not value_shape(label):
                table.section = self.field(label_cells, 0.6, label)
                table.gap += 1
                return True
            return False
        if not label and table.frag and _adjacent(table.frag, cells):
            # the row's name sits on the line above, wrapped ("碱性汗液（20" / values / "次）")
            label_cells, label = table.frag, " ".join(c.text for c in table.frag).strip()
        table.frag = None
        if not label or (value_shape(label) in ("number", "token") and qcol is not None):
            return False
        if label.endswith((":", "：")) or (_match_label(label) is not None and re.search(r"[:：]", label)):
            return False  # a "Label: value" line after the table is a header field, not a row
        conf = table.conf
        common: dict[str, Field[str]] = {}
        for j, col in enumerate(table.cols):
            if j not in assigned or col.key in (None, "quantity", "value"):
                continue
            text = " ".join(c.text for c in assigned[j])
            fld = self.field(assigned[j], conf, _num_text(text) if col.key in ("uncertainty", "mdl") else text)
            if col.key == "method":
                common["method"] = fld
            elif col.key == "unit":
                common["unit"] = fld
            elif col.key == "uncertainty":
                common["uncertainty"] = fld
                mk = re.search(r"k\s*=\s*(\d+(?:[.,]\d+)?)", col.header + " " + (col.group or ""))
                if mk:
                    common["coverage_factor"] = Field[str](
                        value=mk.group(1).replace(",", "."), provenance=fld.provenance, confidence=conf
                    )
            elif col.key == "mdl":
                common["mdl"] = fld
            elif col.key == "verdict":
                common["verdict"] = fld
            elif col.key == "sample" and qcol is not None:
                common["sample_id"] = fld
            elif col.key in ("limit", "lower", "upper") and not col.group:
                if col.key == "limit":
                    common["limit_text"] = fld
                    lo, hi = _limits(text)
                    if lo is not None:
                        common["lower_limit"] = self.field(assigned[j], conf, lo)
                    if hi is not None:
                        common["upper_limit"] = self.field(assigned[j], conf, hi)
                else:
                    common["lower_limit" if col.key == "lower" else "upper_limit"] = self.field(
                        assigned[j], conf, _num_text(text)
                    )
        if "method" in common:
            table.method = common["method"]
        elif table.method is not None:
            common["method"] = table.method  # merged method cell spanning several rows
        cat = table.category
        if (
            cat is not None
            and label_cells
            and label_cells[0].x0 > cat[1] + 20
            and label_cells[0].top - cat[2] < 1.5 * (label_cells[0].bottom - label_cells[0].top)
        ):
            label = f"{cat[0]} {label}"  # the row below a merged category cell ("气味" over "湿态")
        table.category = None
        label_field = self.field(label_cells, conf, label)
        first_new = len(self.out.results)
        for j in value_js:
            col = table.cols[j]
            vcells = assigned[j]
            text = " ".join(c.text for c in vcells)
            fields = dict(common)
            quantity = label_field
            if col.group and qcol is None:
                # grouped landscape table: the group is the parameter, the row label the sample
                quantity = Field[str](value=col.group, provenance=label_field.provenance, confidence=conf)
                fields["sample_id"] = label_field
                for k, col2 in enumerate(table.cols):
                    if col2.group == col.group and k in assigned and col2.key in ("lower", "upper"):
                        name = "lower_limit" if col2.key == "lower" else "upper_limit"
                        fields[name] = self.field(assigned[k], conf, _num_text(" ".join(c.text for c in assigned[k])))
            elif col.sample:
                fields["sample_id"] = Field[str](value=col.sample, provenance=label_field.provenance, confidence=conf)
            if "unit" not in fields and col.unit:
                fields["unit"] = Field[str](value=col.unit, provenance=label_field.provenance, confidence=conf * 0.9)
            if table.section is not None:
                fields["test_part"] = table.section
            value_text = _num_text(text)
            dual = DUAL_VALUE.match(value_text)
            if dual:
                # "938.3 mg/g (93.83 %)": the first figure with its unit; the bracketed one restates it
                value_text = (dual.group("cmp") or "").strip() + dual.group("num")
                fields["unit"] = self.field(vcells, conf * 0.9, dual.group("unit"))
            self.out.results.append(
                Result(quantity=quantity, value=self.field(vcells, conf, value_text), **fields)  # type: ignore[arg-type]
            )
        table.rows += 1
        table.gap = 0
        table.open_label = list(range(first_new, len(self.out.results))) if _unclosed(label) else None
        table.last_row = list(range(first_new, len(self.out.results)))
        table.last_cells = label_cells
        table.subs, table.sub_parent = [], None
        return True

    def _named(self, table: _Table, label_cells: list[Cell], name: str, vcells: list[Cell], value: str) -> None:
        q = self.field(label_cells, table.conf, f"{' '.join(c.text for c in label_cells).strip()} {name}")
        extra: dict[str, Field[str]] = {"test_part": table.section} if table.section is not None else {}
        self.out.results.append(Result(quantity=q, value=self.field(vcells, table.conf, _num_text(value)), **extra))  # type: ignore[arg-type]

    def named_values(self, table: _Table, assigned: dict[int, list[Cell]], label_cells: list[Cell], label: str) -> bool:
        """Rows whose values sit around them in the result column, each with its own name ("平行：73.7" above,
        "垂直：87.9" below "撕裂力"), and a merged category cell between the rows it spans ("气味" between
        "干态" and "湿态"). True when the line was used that way."""
        vcol = next((j for j, c in enumerate(table.cols) if c.key in _RESULT_KEYS), None)
        if not label and vcol is not None and list(assigned) == [vcol] and len(assigned[vcol]) == 1:
            cell = assigned[vcol][0]
            m = re.match(r"^(\S{1,12}?)\s*[:：]\s*(\S.*)$", cell.text)
            if not m or not value_shape(m.group(2)):
                return False
            h = cell.bottom - cell.top
            parent = table.sub_parent
            if parent is not None and abs(cell.top - parent[0][-1].bottom) < 2.5 * h:
                self._named(table, parent[0], m.group(1), [cell], m.group(2))
            else:
                table.subs.append((m.group(1), m.group(2), [cell]))
            table.gap = 0
            return True
        if not label or not label_cells:
            return False
        h = label_cells[0].bottom - label_cells[0].top
        near = [s for s in table.subs if 0 <= label_cells[0].top - s[2][0].top < 2.5 * h]
        if near:
            for name, value, vcells in near:
                self._named(table, label_cells, name, vcells, value)
            table.subs, table.sub_parent = [], (label_cells, label)
            table.gap = 0
            return True
        last = table.last_cells
        if (
            table.last_row
            and last
            and len(label) <= 12
            and len(" ".join(c.text for c in last)) <= 6  # the rows under a category are short ("干态")
            and not re.search(r"\d", label)
            and label_cells[0].x1 < last[0].x0 - 10
            and 0 < label_cells[0].top - last[-1].bottom < 1.5 * h
        ):
            for n in table.last_row:
                r = self.out.results[n]
                self.out.results[n] = r.model_copy(
                    update={"quantity": r.quantity.model_copy(update={"value": f"{label} {r.quantity.value}"})}
                )
            table.category = (label, label_cells[0].x0, label_cells[-1].bottom)
            table.last_row = []
            table.gap = 0
            return True
        return False

    def continue_label(self, table: _Table, label_cells: list[Cell], label: str) -> bool:
        """Append the closing part of a wrapped name ("次）") to the results of the row just read."""
        if not table.open_label or not re.match(r"^[^(（]*[)）]", label):
            return False
        last = self.out.results[table.open_label[0]].quantity
        bbox = last.provenance.bbox if last.provenance is not None else None
        if bbox is None or abs(label_cells[0].top - bbox[3]) > 2 * (label_cells[0].bottom - label_cells[0].top):
            return False
        joiner = "" if _CJK_END.search(last.value) else " "
        for n in table.open_label:
            r = self.out.results[n]
            q = r.quantity.model_copy(update={"value": r.quantity.value + joiner + label})
            self.out.results[n] = r.model_copy(update={"quantity": q})
        table.open_label = None
        return True

    def transposed(self, lines: list[list[Cell]]) -> set[int]:
        """Rows labelled by a result/uncertainty word followed by values in columns (test points across)."""
        used: set[int] = set()
        i = 0
        while i < len(lines):
            run: list[tuple[int, str | None, list[Cell]]] = []
            j = i
            while j < len(lines):
                cells = lines[j]
                if len(cells) < 3:
                    break
                vals = [c for c in cells[1:] if value_shape(c.text)]
                if len(vals) < 2 or len(vals) < len(cells) - 2:
                    break
                run.append((j, _row_label_key(cells[0].text), cells))
                j += 1
            keys = [k for _, k, _ in run]
            if len(run) >= 2 and "value" in keys:
                points = next((r for r in run if r[1] not in ("value", "uncertainty", "unit")), None)
                values = next(r for r in run if r[1] == "value")
                unc = next((r for r in run if r[1] == "uncertainty"), None)
                vcells = values[2][1:]
                for n, vc in enumerate(vcells):
                    qname = values[2][0].text
                    if points is not None and n + 1 < len(points[2]):
                        qname = f"{points[2][0].text} {points[2][n + 1].text}"
                    extra: dict[str, Field[str]] = {}
                    if unc is not None:
                        uc = min(unc[2][1:], key=lambda c: abs((c.x0 + c.x1) / 2 - (vc.x0 + vc.x1) / 2))
                        extra["uncertainty"] = self.field([uc], 0.7, _num_text(uc.text))
                    self.out.results.append(
                        Result(
                            quantity=self.field([values[2][0]], 0.7, qname),
                            value=self.field([vc], 0.7, _num_text(vc.text)),
                            **extra,  # type: ignore[arg-type]
                        )
                    )
                used.update(r[0] for r in run)
                i = j
            else:
                i += 1
        return used

    def names_across(self, lines: list[list[Cell]]) -> set[int]:
        """Analytes across the top, one row per unit below ("CBD CBG THC" over "% 0.2 ND 1.5", "LOD ...").

        The names line has at least four short cells, no values and no column words; a following row counts
        when its first cell (left of the first name) is a unit or a detection-limit word and its values sit
        under at least half of the names. A unit row gives results in that unit; an LOD/LOQ row their MDL.
        """
        used: set[int] = set()
        for i, cells in enumerate(lines):
            if len(cells) < 4 or i in used:
                continue
            names = [c for c in cells if len(c.text) <= 24 and not value_shape(c.text)]
            names = [c for c in names if not classify_header(c.text)[0]]
            if len(names) < 4 or len(names) * 3 < len(cells) * 2:
                continue
            names.sort(key=lambda c: c.x0)
            width = max(c.x1 - c.x0 for c in names)
            rows: list[tuple[int, str, str | None, dict[int, Cell]]] = []
            for k in range(i + 1, min(i + 8, len(lines))):
                row = [c for c in lines[k] if c.x0 <= names[-1].x1 + width and c.x1 >= names[0].x0 - 4 * width]
                if not row:
                    continue
                row.sort(key=lambda c: c.x0)
                first = row[0]
                label, rest = first.text, row[1:]
                if first.x1 > names[0].x0 + 2:
                    # the unit and the first value run together ("mg/unit ND"): split off the last word
                    if len(first.words) < 2 or not value_shape(first.words[-1].text):
                        continue
                    label = " ".join(w.text for w in first.words[:-1])
                    rest = [Cell(words=first.words[-1:], page=first.page), *row[1:]]
                key, unit = classify_header(label)
                if key not in ("value", "mdl"):
                    continue
                under: dict[int, Cell] = {}
                for c in rest:
                    if not value_shape(c.text):
                        continue
                    mid = (c.x0 + c.x1) / 2
                    n = min(range(len(names)), key=lambda q: abs((names[q].x0 + names[q].x1) / 2 - mid))
                    if abs((names[n].x0 + names[n].x1) / 2 - mid) <= width and n not in under:
                        under[n] = c
                if len(under) * 2 >= len(names):
                    rows.append((k, key, unit, under))
            values = [r for r in rows if r[1] == "value"]
            if not values:
                continue
            mdl = next((r for r in rows if r[1] == "mdl"), None)
            for _k, _key, unit, under in values:
                for n, vc in sorted(under.items()):
                    extra: dict[str, Field[str]] = {}
                    if unit:
                        extra["unit"] = self.field([vc], 0.7, unit)
                    if mdl is not None and n in mdl[3]:
                        extra["mdl"] = self.field([mdl[3][n]], 0.7, _num_text(mdl[3][n].text))
                    self.out.results.append(
                        Result(
                            quantity=self.field([names[n]], 0.7, names[n].text),
                            value=self.field([vc], 0.7, _num_text(vc.text)),
                            **extra,  # type: ignore[arg-type]
                        )
                    )
            used.add(i)
            used.update(r[0] for r in rows)
        return used

    def page(self, lines: list[Line]) -> None:
        cell_lines = [split_cells(ln) for ln in lines]
        # tables still open from the previous page continue (with or without a repeated header)
        carry = [t for t in self.open if not t.closed]
        for t in carry:
            t.gap = -_CONTINUATION_SKIP
        used = self.transposed(cell_lines) | self.names_across(cell_lines)
        i = 0
        while i < len(cell_lines):
            if i in used:
                i += 1
                continue
            cells = cell_lines[i]
            if _is_header_line(cells):
                band = [cells]
                start = i
                hx0 = min(c.x0 for c in cells if classify_header(c.text)[0])
                hx1 = max(c.x1 for c in cells if classify_header(c.text)[0])
                # units / sub-labels below, group labels above (two-level headers)
                k = i + 1
                while k < len(cell_lines) and k <= i + 2:
                    below = _near(cell_lines[k], hx0, hx1)
                    if not below or _has_values(below):
                        break
                    if lines[k].top - lines[k - 1].top > 3.2 * _line_h(lines[k - 1]):
                        break
                    short = all(len(c.text) <= 24 for c in below)
                    # one lone cell under the header is a section heading ("Part 1: housing"), unless it
                    # is a unit or a header word
                    lone_ok = (
                        len(below) >= 2
                        or below[0].text.startswith(("(", "["))
                        or bool(classify_header(below[0].text)[0])
                    )
                    if _is_header_line(below) or (short and lone_ok):
                        band.append(below)
                        k += 1
                    else:
                        break
                prev = _near(cell_lines[start - 1], hx0, hx1) if start > 0 else []
                if prev and not _has_values(prev):
                    near = lines[start].top - lines[start - 1].top <= 2.6 * _line_h(lines[start - 1])
                    spans = (
                        len(prev) >= 2
                        and len(cells) >= 2 * len(prev)
                        and not any(re.search(r"[:：]|\d{3}", c.text) for c in prev)
                        # a section title over the name column ("Potency Profile" over "Cannabinoid") is no group
                        and not any(
                            _overlap(c.x0, c.x1, h.x0, h.x1) > 0
                            for c in prev
                            for h in cells
                            if classify_header(h.text)[0] in ("quantity", "sample")
                        )
                    )
                    named = any(classify_header(c.text)[0] for c in prev)
                    # group labels above ("Thickness (µm)" over LSL | USL | Measured) or header words
                    short = all(len(c.text) <= 24 and ":" not in c.text for c in prev)
                    if near and ((short and named) or spans):
                        band.insert(0, prev)
                band[band.index(cells)] = _near(cells, hx0, hx1)
                cols = _band_columns(band)
                tables = _finish_columns(cols)
                if tables:
                    new_open: list[_Table] = []
                    for tcols in tables:
                        known = sum(1 for c in tcols if c.key is not None)
                        conf = 0.9 if known >= 3 else 0.8
                        t = _Table(
                            cols=tcols,
                            x0=min(c.x0 for c in tcols),
                            x1=max(c.x1 for c in tcols),
                            page=cells[0].page,
                            conf=conf,
                        )
                        # a repeated header on a continuation page keeps the section context
                        same = next(
                            (
                                o
                                for o in carry
                                if [c.key for c in o.cols] == [c.key for c in tcols]
                                and _overlap(o.x0, o.x1, t.x0, t.x1) > 0
                            ),
                            None,
                        )
                        if same is not None:
                            t.section, t.method = same.section, same.method
                        new_open.append(t)
                    # tables at other x positions stay open (side by side with a new header elsewhere)
                    self.open = [
                        o
                        for o in self.open
                        if not o.closed and all(_overlap(o.x0, o.x1, n.x0, n.x1) <= 0 for n in new_open)
                    ] + new_open
                    carry = []
                    i = k
                    continue
            consumed = False
            for t in self.open:
                if t.closed:
                    continue
                inside = [c for c in cells if c.x1 >= t.x0 - 45 and c.x0 <= t.x1 + 8]
                if not inside:
                    continue
                if self.try_row(t, inside):
                    consumed = True
                else:
                    t.gap += 1
                    if t.gap > _MAX_GAP_LINES:
                        t.closed = True
            if not consumed:
                for t in self.open:
                    if not t.closed and not any(c.x1 >= t.x0 - 8 and c.x0 <= t.x1 + 8 for c in cells):
                        t.gap += 1
                        if t.gap > _MAX_GAP_LINES:
                            t.closed = True
            i += 1
        # a table that ended well before the page's end does not continue on the next page
        for t in self.open:
            if t.gap > 3:
                t.closed = True


_CJK_END = re.compile(r"[\u3000-\u9fff\uff00-\uffef\d]$")


def _unclosed(label: str) -> bool:
    """A name with an opening bracket that does not close on its line ("碱性汗液（20") wraps downwards."""
    return label.count("(") + label.count("（") > label.count(")") + label.count("）")


def _qualitative(text: str) -> bool:
    """A short result in words (not "/", not a header word): "无异常", "no damage", "intact"."""
    t = " ".join(text.split())
    return 0 < len(t) <= 16 and bool(re.search(r"\w", t)) and not classify_header(t)[0] and ":" not in t


def _adjacent(above: list[Cell], row: list[Cell]) -> bool:
    """``above`` ends within about one line height of where ``row`` starts."""
    h = max(c.bottom - c.top for c in row)
    return -h <= min(c.top for c in row) - max(c.bottom for c in above) <= 1.5 * h


def _row_label_key(text: str) -> str | None:
    """Key of a transposed table's row label: the whole label (or one side of "Messwert / Measured value")
    must be a lexicon term -- "pH value" in a data row is an analyte, not a label."""
    from parsers.lexicon import COLUMN_TERMS

    parts = [norm_label(p) for p in re.split(r"\s*/\s*", text) if p.strip()]
    for part in [norm_label(text), *parts]:
        for key in ("value", "uncertainty", "unit", "quantity"):
            if part in COLUMN_TERMS[key] or (
                key == "quantity"
                and part
                in (
                    "test point",
                    "prüfpunkt",
                    "检测点",
                    "point",
                    "punto",
                    "nominal value",
                    "nennwert",
                    "sollwert",
                    "set point",
                )
            ):
                return key
    return None


def _line_h(line: Line) -> float:
    return max(6.0, statistics.median([w.bottom - w.top for w in line.words]))


# ---------------------------------------------------------------------------------------------- header fields

_LABELS: list[tuple[str, str]] = sorted(
    ((label, path) for path, labels in FIELD_LABELS.items() for label in labels), key=lambda p: -len(p[0])
)
_FIELD_CHECK = {
    "report_id": lambda v: (
        bool(re.search(r"\d", v)) and len(v) <= 60 and not (re.fullmatch(r"[\d\s./-]+", v) and normalise_date(v))
    ),  # a date is no report number
    "supersedes": lambda v: bool(re.search(r"\d", v)) and len(v) <= 60,
    "items[0].id": lambda v: bool(re.search(r"\d", v)) and len(v) <= 60,
    "customer.name": lambda v: 1 < len(v) <= 120 and normalise_date(v) is None and not re.fullmatch(r"[\d\s./-]+", v),
    "lab.name": lambda v: 2 < len(v) <= 120 and not re.fullmatch(r"[\d\s./-]+", v),
    "items[0].description": lambda v: 1 < len(v) <= 160,
}


_LABEL_PATH: dict[str, str] = {label: path for label, path in reversed(_LABELS)}
_LABEL_WORDS: list[str] = [label for label in _LABEL_PATH if len(label) >= 8]
# labels of 6+ characters by their first word, longest first (the colon-less "Sample ID 123" look-up)
_BY_FIRST_WORD: dict[str, list[tuple[str, str]]] = {}
for _label, _path in _LABELS:
    if len(_label) >= 6:
        _BY_FIRST_WORD.setdefault(_label.split(" ", 1)[0], []).append((_label, _path))
# label shapes no list can enumerate: "Sample MTL #", "Lab Sample No", "SHMA Report ID"
_LABEL_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:[\w.]+ ){0,2}sample(?: [\w.]+)? (?:#|no\.?|id|number|code)$"), "items[0].id"),
    (re.compile(r"^(?:[\w.]+ ){0,2}(?:report|certificate|coa) (?:id|no\.?|number|#)$"), "report_id"),
    (re.compile(r"^report (?:submitted|issued|created|date)$"), "dates.issue"),
    # "Final Report  MCR-S22-10010 Rev.01.00": a report title directly followed by its number
    (re.compile(r"^(?:final|amended|revised|test|analytical) report$"), "report_id"),
    (re.compile(r"^(?:[\w.]+ ){0,2}(?:received|receipt)(?: date| on)?$"), "dates.receipt"),
    (re.compile(r"^(?:[\w.]+ ){0,2}(?:collected|sampled)(?: date| on)?$"), "dates.sampling"),
]
_INLINE_ID = re.compile(
    r"\b(?P<kind>sample|report|certificate)\s*(?:#|no\.|number)\s*[:：]?\s*(?P<id>[A-Z0-9][A-Z0-9._/-]{3,}\d)\b",
    re.IGNORECASE,
)
_PAGE_TAIL = re.compile(r"\s*(?:page|seite|页|第)\s*\d+\s*(?:of|von|/|共)\s*\d+\s*页?$", re.IGNORECASE)


@lru_cache(maxsize=8192)
def _match_label(text: str) -> tuple[str, str, str] | None:
    """``(path, label, rest)`` when ``text`` starts with a known label (bilingual pairs allowed)."""
    # a section marker in front of the label ("[B] Client Info", "(c) Sample") is not part of it
    raw = re.sub(r"^\s*(?:\[[A-Za-z0-9]{1,2}\]|\([A-Za-z0-9]{1,2}\))\s+", "", text.replace("\u3000", " "))
    # "Auftraggeber / Customer: ACME" and "委托单位 Client: ACME": look at the part before the colon
    head, sep, rest = re.split(r"([:：])", raw, maxsplit=1) if re.search(r"[:：]", raw) else [raw, "", ""]
    h = norm_label(head)
    parts = [h] + [norm_label(p) for p in re.split(r"\s*/\s*|\s{2,}", head) if p.strip()]
    if re.search(r"[\u4e00-\u9fff]", h):
        parts += [norm_label(p) for p in re.findall(r"[\u4e00-\u9fff]+|[A-Za-z][A-Za-z .#/'-]*", head)]
    for part in parts:
        for label, path in _LABELS:
            if part == label:
                return path, label, rest.strip() if sep else ""
    if sep and 8 <= len(h) <= 30:
        # a misspelt label before a colon ("Date of Reciept:"): close enough to one wording
        close = difflib.get_close_matches(h, _LABEL_WORDS, n=1, cutoff=0.88)
        if close:
            return _LABEL_PATH[close[0]], close[0], rest.strip()
    hh = h + " #" if head.rstrip().endswith("#") else h  # norm_label drops a trailing "#"
    for pat, path in _LABEL_PATTERNS:
        if pat.match(hh):
            return path, h, rest.strip() if sep else ""
    # "Final Report MCR-S22-10010 Rev.01.00" in one cell: a report title directly followed by its number
    if not sep:
        mt = re.match(r"^((?:final|amended|revised) report)\s+(?=\S*\d)(\S.{2,40})$", raw.strip(), re.IGNORECASE)
        if mt:
            return "report_id", mt.group(1).lower(), mt.group(2)
    # "Sample ID 211104M007" without a colon, or "DATE ISSUED 11/06/2021 | RESULT:" with a colon further on
    # (then the text after the label must hold a number: "Laboratory address:" is no lab name)
    low = norm_label(raw)
    for label, path in _BY_FIRST_WORD.get(low.split(" ", 1)[0], ()):
        if low.startswith(label + " "):
            rest2 = raw.strip()[len(label) :].strip(" :#")
            if not sep or re.search(r"\d", head[len(label) :]):
                return path, label, rest2
    return None


_ID_SHAPE = re.compile(r"(?=[^ ]*\d)[A-Za-z0-9][A-Za-z0-9._/#-]{4,}")
_SAMPLE_WORDS = {"sample", "probe", "样品", "échantillon", "muestra", "試料"}


_COLON = re.compile(r"[:：]")
_SEPARATORS = ("|", ";", "｜", "；")


def _separated(words: list[Word]) -> list[list[Word]]:
    """Words cut at explicit separators: "Sample Received: 12/14/2021; Report Created: …", "ID: 1 | REPORT ID: 2"."""
    groups: list[list[Word]] = [[]]
    for w in words:
        t = w.text
        if t in _SEPARATORS:
            if groups[-1]:
                groups.append([])
            continue
        if t.startswith(_SEPARATORS) and groups[-1]:
            groups.append([])
        groups[-1].append(w)
        if len(t) > 1 and t.endswith(_SEPARATORS):
            groups.append([])
    return [g for g in groups if g]


def _pair_parts(cell: Cell) -> list[Cell]:
    """A cell holding several ``Label: value`` pairs cut into one cell per pair (at separators, and where a
    known label with its colon starts after a value: "Received: 06/08/2021 Report Created: 06/17/2021")."""
    words = cell.words
    separated = any(
        w.text in _SEPARATORS or w.text.endswith(_SEPARATORS) or w.text.startswith(_SEPARATORS) for w in words
    )
    if len(words) < 3 or (sum(1 for w in words if _COLON.search(w.text)) < 2 and not separated):
        return [cell]
    parts: list[list[Word]] = []
    for group in _separated(words):
        cur: list[Word] = []
        for i, w in enumerate(group):
            colon_at = next((k for k, x in enumerate(cur) if _COLON.search(x.text)), None)
            # the pair so far has its value ("Received: 06/08/2021"): a label with a colon may start here
            if colon_at is not None and (colon_at < len(cur) - 1 or cur[colon_at].text[-1:] not in ":："):
                tail = group[i:]
                head_len = next((k for k, x in enumerate(tail[:5]) if _COLON.search(x.text)), None)
                if head_len is not None:
                    m = _match_label(" ".join(x.text for x in tail))
                    if m is not None and m[2]:
                        parts.append(cur)
                        cur = []
            cur.append(w)
        if cur:
            parts.append(cur)
    if len(parts) <= 1:
        return [cell]
    return [Cell(p, cell.page) for p in parts]


def _join_split_labels(cells: list[Cell]) -> list[Cell]:
    """A label cut in two by wide word spacing (OCR: "SAMPLE" | "ID: 340796") joined back into one cell."""
    out: list[Cell] = []
    for c in cells:
        prev = out[-1] if out else None
        if (
            prev is not None
            and len(prev.words) <= 3
            and not _COLON.search(prev.text)
            and _COLON.search(c.text)
            and c.x0 - prev.x1 < 4 * (c.bottom - c.top)
            and _match_label(c.text) is None
        ):
            m = _match_label(f"{prev.text} {c.text}")
            if m is not None and m[2] and m[1].startswith(norm_label(prev.text)):
                out[-1] = Cell(prev.words + c.words, c.page)
                continue
        out.append(c)
    return out


def _compound_label(text: str) -> list[str] | None:
    """Paths of a label cell naming two fields at once ("COLLECTED, RECEIVED"), or None."""
    if "," not in text or _COLON.search(text):
        return None
    paths: list[str] = []
    for part in text.split(","):
        m = _match_label(part.strip())
        if m is None or m[2]:
            return None
        paths.append(m[0])
    return paths if len(paths) >= 2 else None


class _Fields:
    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.found: dict[str, Field[str]] = {}

    def put(self, path: str, cells: list[Cell], value: str, conf: float) -> bool:
        value = " ".join(value.split()).strip(" |:;,")
        value = _PAGE_TAIL.sub("", value).strip(" |:;,")
        if not value:
            return False
        if path.startswith("dates."):
            iso = normalise_date(value)
            if iso is None:
                return False
            value = iso
        check = _FIELD_CHECK.get(path)
        if check is not None and not check(value):
            return False
        if _match_label(value) is not None and path != "items[0].description":
            return False  # the "value" is the next label (an empty field)
        old = self.found.get(path)
        if old is not None and (old.confidence or 0) >= conf:
            return False
        self.found[path] = self.r.field(cells, conf, value)
        return True

    def page(self, lines: list[Line], page_no: int) -> None:
        cell_lines = [[p for c in _join_split_labels(split_cells(ln)) for p in _pair_parts(c)] for ln in lines]
        for ln in lines:
            # pairs cut into several cells by wide word spacing (OCR) but separated by "|" or ";"
            segs = _separated(ln.words)
            for seg in segs if len(segs) > 1 else []:
                text = " ".join(w.text for w in seg)
                if len(_COLON.findall(text)) == 1 and len(seg) <= 8:
                    m = _match_label(text)
                    if m is not None and m[2]:
                        self.put(m[0], [Cell(seg, ln.page)], m[2], (0.9 if page_no == 1 else 0.8) - 0.15)
        for li, cells in enumerate(cell_lines):
            took_below = False
            for ci, cell in enumerate(cells):
                prev_took_below, took_below = took_below, False
                m = _match_label(cell.text)
                compound = _compound_label(cell.text) if m is None else None
                if compound is not None:
                    # "COLLECTED, RECEIVED" over "05/26/2021 11:22, 05/27/2021 03:42": one value per label
                    for below in cell_lines[li + 1 : li + 2]:
                        vals = [c for c in below if c.x1 >= cell.x0 - 3]
                        pieces = " ".join(c.text for c in vals).split(",")
                        if vals and len(pieces) == len(compound):
                            for path, piece in zip(compound, pieces, strict=True):
                                self.put(path, vals, piece, (0.9 if page_no == 1 else 0.8) - 0.2)
                    continue
                if m is None:
                    # "Official Test Results for Laboratory Sample # WA-221015-052": a label inside a sentence
                    im = _INLINE_ID.search(cell.text)
                    if im:
                        path = "items[0].id" if im.group("kind").lower() == "sample" else "report_id"
                        self.put(path, [cell], im.group("id"), 0.5)
                    continue
                path, label, rest = m
                own_pair = bool(rest) and bool(re.search(r"[:：]", cell.text))
                if not rest and cell.text.rstrip().endswith((":", "：")):
                    # "Client:" with the name left-aligned on the line under ("Final Report" beside it is
                    # another field): the aligned cell under wins over the next cell on the line
                    under = next(
                        (
                            c
                            for c in (cell_lines[li + 1] if li + 1 < len(cell_lines) else [])
                            if abs(c.x0 - cell.x0) <= 3
                        ),
                        None,
                    )
                    beside = cells[ci + 1] if ci + 1 < len(cells) else None
                    if (
                        under is not None
                        and beside is not None
                        and any(abs(c.x0 - beside.x0) <= 10 for c in cell_lines[li + 1])
                    ):
                        under = None  # a grid: the next line has a value under this line's value too
                    value_cells = [under] if under is not None else []
                    if under is not None and path in ("customer.name", "lab.name"):
                        # a name wrapped onto one more line ("Commonwealth Alternative" / "Care"); an address
                        # line (digits, "City, ST") ends it
                        more = next(
                            (
                                c
                                for c in (cell_lines[li + 2] if li + 2 < len(cell_lines) else [])
                                if abs(c.x0 - cell.x0) <= 3
                            ),
                            None,
                        )
                        if (
                            more is not None
                            and not re.search(r"[\d,@:：]", more.text)
                            and len(more.words) <= 3
                            and _match_label(more.text) is None
                            and more.top - under.bottom < (under.bottom - under.top) * 1.5
                        ):
                            value_cells.append(more)
                    if (
                        under is not None
                        and _match_label(under.text) is None
                        and not under.text.rstrip().endswith((":", "："))
                        and self.put(
                            path,
                            value_cells,
                            " ".join(c.text for c in value_cells),
                            (0.9 if page_no == 1 else 0.8) - 0.05,
                        )
                    ):
                        took_below = True
                        continue
                if (
                    ci > 0
                    and cells[ci - 1].text.rstrip().endswith((":", "："))
                    and not own_pair
                    and not prev_took_below
                ):
                    continue  # this cell is the value of the label before it (not "Received: 05/31/2022")
                if path == "items[0].description" and _ID_SHAPE.fullmatch(rest) and label in _SAMPLE_WORDS:
                    path = "items[0].id"  # "Sample: DA20330006-001" names the sample by its identifier
                conf_base = 0.9 if page_no == 1 else 0.8
                if rest and not re.search(r"[:：]", cell.text):
                    conf_base -= 0.3  # "Sample ID 123" without a colon: a weaker sign
                if rest and self.put(path, [cell], rest, conf_base):
                    continue
                if rest:
                    continue
                # grid: the value is the next cell on the line
                nxt = cells[ci + 1] if ci + 1 < len(cells) else None
                if nxt is not None and nxt.text.rstrip().endswith((":", "：")):
                    nxt = None  # the next cell is another (unknown) label: this value is below, if anywhere
                if (
                    nxt is not None
                    and _match_label(nxt.text) is None
                    and self.put(path, [nxt], nxt.text, conf_base - 0.1)
                ):
                    continue
                # label above value: the cell below that overlaps this one
                for below in cell_lines[li + 1 : li + 3]:
                    hit = [c for c in below if _overlap(c.x0, c.x1, cell.x0, max(cell.x1, cell.x0 + 60)) > 0]
                    if hit:
                        if self.put(path, hit[:1], hit[0].text, conf_base - 0.2):
                            break
                        break


def _accreditation(reader: _Reader, pages: list[list[Line]]) -> Accreditation | None:
    best: tuple[float, Accreditation] | None = None
    for lines in pages:
        for ln in lines:
            text = ln.text
            if ACCREDITATION_DISTRACTORS.search(text):
                continue
            for body, pat in ACCREDITATION_PATTERNS:
                m = pat.search(text)
                if not m:
                    continue
                conf = 0.9 if re.search(r"accredit|akkredit|认可|accrédit|acredit|認定", text, re.IGNORECASE) else 0.7
                conf -= 0.05 * (ln.page - 1)
                prov = _prov(reader.sha, ln.page, ln.bbox(m.start("id"), m.end("id")))
                acc = Accreditation(
                    body=Field[str](value=body, provenance=prov, confidence=round(conf, 3)),
                    id=Field[str](value=" ".join(m.group("id").split()), provenance=prov, confidence=round(conf, 3)),
                )
                if best is None or conf > best[0]:
                    best = (conf, acc)
    return best[1] if best else None


_LAB_WORDS = re.compile(
    r"\b(?:laborator(?:y|ies|ium|ien|ies)|labs?|labor|testing|analytic(?:s|al)|scientific|metrolog\w*|"
    r"calibration|bundesanstalt|prüf\w*|institut\w*)\b|实验室|检测|检验|研究院|laboratoire|laboratorio",
    re.IGNORECASE,
)
_COMPANY = re.compile(r"\b(?:LLC|Inc\.?|GmbH|Ltd\.?|Limited|Corp\.?|AG|S\.?A\.?|SAS|KG|Co\.)\b|有限公司|Bundesanstalt")


_LAB_ALONE = re.compile(
    r"^(?:[A-Z][\w&.'-]*\s){0,3}(?:Laboratories|Laboratory|Labs|Laboratorium|Labor|Laboratoire|Laboratorio)$"
)


def _lab_name(reader: _Reader, pages: list[list[Line]]) -> Field[str] | None:
    """The issuing lab: a cell naming a laboratory with a company form, first on page 1 (top or footer);
    else a short cell that is just a name ending in "Laboratories"/"Labs" in the top quarter of page 1."""
    for lines in pages[:1]:
        for ln in lines:
            if ln.top > 220:
                break
            for cell in split_cells(ln):
                if _LAB_ALONE.match(cell.text.strip()):
                    return reader.field([cell], 0.6, cell.text.strip())
    for lines in pages[:1]:
        for ln in lines:
            for cell in split_cells(ln):
                for part in re.split(r"\s+\|\s+|\s{3,}", cell.text):
                    p = part.strip(" ,.|©")
                    p = re.sub(r"^©\s*\d{4}\s*", "", p)
                    if 4 < len(p) <= 80 and _LAB_WORDS.search(p) and _COMPANY.search(p) and ":" not in p:
                        m = re.match(r"^(.*?\b(?:LLC|Inc\.?|GmbH|Ltd\.?|Limited|Corp\.?|AG|KG)|.*?有限公司)", p)
                        name = m.group(1) if m else p
                        return reader.field([cell], 0.6, name.strip())
    return None


def extract_layout(pages: list[list[Line]], *, sha256: str, page_conf: dict[int, float] | None = None) -> Extraction:
    """Tables, header fields and accreditation of a report from its pages' upright lines."""
    reader = _Reader(sha256)
    fields = _Fields(reader)
    for lines in pages:
        if not lines:
            continue
        page_no = lines[0].page
        reader.page(lines)
        if page_no <= 2:
            fields.page(lines, page_no)
    out = reader.out
    out.fields = fields.found
    lab = _lab_name(reader, pages)
    if lab is not None and "lab.name" not in out.fields:
        out.fields["lab.name"] = lab
    out.accreditation = _accreditation(reader, pages)
    if page_conf:
        scale = page_conf
        out.results = [_scaled(r, scale) for r in out.results]
    return out


def _scaled(r: Result, scale: dict[int, float]) -> Result:
    page = r.value.provenance.page or 1
    f = scale.get(page, 1.0)
    if f == 1.0:
        return r
    upd = {}
    for name in ("quantity", "value"):
        fld: Field[str] = getattr(r, name)
        upd[name] = fld.model_copy(update={"confidence": round((fld.confidence or 0.8) * f, 3)})
    return r.model_copy(update=upd)


def merge_layout(report: LabReport, found: Extraction, *, prefer_layout: bool = False) -> LabReport:
    """Fill what the profile pass left empty from the layout-free pass, then judge whether to review.

    Values matched by a lab's own YAML profile win; layout-free values fill the gaps (with
    ``prefer_layout``, i.e. the generic profile, the cell-aware layout-free values win). The report is
    flagged for review when no result row was found or the mean confidence is below 0.6.
    """
    upd: dict[str, Any] = {}
    if found.results and (prefer_layout or not report.results):
        upd["results"] = found.results
    if prefer_layout:
        report = _clear_for_layout(report, found)
    if report.report_id is None and "report_id" in found.fields:
        upd["report_id"] = found.fields["report_id"]
    if report.amends_report_id is None and "supersedes" in found.fields:
        upd["amends_report_id"] = found.fields["supersedes"]
    if found.accreditation is not None:
        upd["accreditation"] = found.accreditation
    report = report.model_copy(update=upd)
    f = found.fields
    if report.lab.name is None and "lab.name" in f:
        report.lab.name = f["lab.name"]
    if report.customer.name is None and "customer.name" in f:
        report.customer.name = f["customer.name"]
    d = report.dates
    for name in ("issue", "receipt", "sampling"):
        if getattr(d, name) is None and f"dates.{name}" in f:
            setattr(d, name, f[f"dates.{name}"])
    if d.performance_start is None and "dates.performance" in f:
        d.performance_start = f["dates.performance"]
        d.performance_end = d.performance_end or f["dates.performance"]
    if not report.items and ("items[0].id" in f or "items[0].description" in f):
        report.items = [ReportItem(id=f.get("items[0].id"), description=f.get("items[0].description"))]
    elif report.items:
        item = report.items[0]
        if item.id is None and "items[0].id" in f:
            item.id = f["items[0].id"]
        if item.description is None and "items[0].description" in f:
            item.description = f["items[0].description"]
    report.warnings.extend(found.warnings)
    report.review = judge(report)
    return report


def _clear_for_layout(report: LabReport, found: Extraction) -> LabReport:
    """Drop generic-profile values that the layout-free pass also found (it cuts cells, the profile lines)."""
    f = found.fields
    upd: dict[str, Any] = {}
    if "report_id" in f:
        upd["report_id"] = None
    if "supersedes" in f:
        upd["amends_report_id"] = None
    report = report.model_copy(update=upd)
    if "customer.name" in f:
        report.customer.name = None
    if "lab.name" in f and (f["lab.name"].confidence or 0) >= 0.7:
        report.lab.name = None
    for name in ("issue", "receipt", "sampling"):
        if f"dates.{name}" in f:
            setattr(report.dates, name, None)
    if report.items:
        item = report.items[0]
        if "items[0].id" in f:
            item.id = None
        if "items[0].description" in f:
            item.description = None
    return report


def _confidences(report: LabReport) -> list[float]:
    out: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, Field):
            out.append(node.confidence if node.confidence is not None else 0.95)
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                if name in ("source", "signature", "schema_check", "review"):
                    continue
                walk(getattr(node, name))
        elif isinstance(node, list):
            for x in node:
                walk(x)

    walk(report)
    return out


def judge(report: LabReport) -> Review:
    """Review verdict: no results, low confidence or unread pages -> a person must look at it."""
    reasons: list[str] = []
    confs = _confidences(report)
    mean = round(sum(confs) / len(confs), 3) if confs else 0.0
    if not report.results:
        reasons.append("no result rows were found in the report")
    if confs and mean < 0.6:
        reasons.append(f"low extraction confidence ({mean:.2f} < 0.60)")
    if report.needs_ocr_pages:
        reasons.append(f"pages could not be read (no text layer, OCR unavailable): {report.needs_ocr_pages}")
    if report.report_id is None:
        reasons.append("no report number was found")
    return Review(required=bool(reasons), reasons=reasons, confidence=mean if confs else None)
