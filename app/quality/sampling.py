"""ISO 2859-1 single sampling plans for normal inspection (Table 1 and Table 2-A).

ISO 2859-1:1999 (identical plans: ANSI/ASQ Z1.4, MIL-STD-105E Table II-A) indexes plans by lot size,
inspection level and AQL:

1. Table 1 maps (lot size range, inspection level) to a *sample size code letter* A..R.
2. Table 2-A maps the code letter to a sample size n and each AQL column to an acceptance number Ac and a
   rejection number Re (single sampling, Re = Ac + 1), *or* to an arrow: "use the first sampling plan below
   (above) the arrow" -- the letter, and with it the sample size, changes, Ac/Re come from the new cell.
3. If the sample size equals or exceeds the lot size, every item is inspected (100 % inspection).

Table 2-A is a diagonal table: with letters numbered A=0 .. R=15 and AQL columns 0.010=0 .. 1000=25, every
cell on the same diagonal ``d = letter + column`` holds the same entry (the printed table repeats it)::

    d <= 13   down arrow          d = 17..24  Ac = 1, 2, 3, 5, 7, 10, 14, 21
    d = 14    Ac 0 Re 1           d = 25, 26  Ac = 30, 44 for letters A..E only (else up arrow)
    d = 15    up arrow            d >= 27     up arrow
    d = 16    down arrow

with the two edge cells where the arrow would leave the table: R/AQL 0.015 is an up arrow (no plan below R;
the plan used is P, n=800, Ac 0, as the printed table shows) and A/AQL 10 is read as a down arrow (no plan
above A; the plan used is C, n=5, Ac 1 -- our interpretation of the empty printed cell).

Worked example: lot 1200, level II -> Table 1 gives J (n=80); AQL 1.0 is column 10, d = 8 + 10 = 18 -> Ac 2,
Re 3.

AQLs above 10 are expressed in nonconformities per 100 items and only apply to counting nonconformities;
the template restricts itself to AQL <= 10 (percent nonconforming), this module serves the whole table.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.quality.errors import LotSizeError, UnknownAQLError, UnknownInspectionLevelError

__all__ = [
    "AQL_VALUES",
    "CODE_LETTERS",
    "INSPECTION_LEVELS",
    "SAMPLE_SIZES",
    "InspectionLevel",
    "SamplingPlan",
    "code_letter",
    "full_inspection_plan",
    "normalise_aql",
    "plan_for",
    "table_2a_cell",
]

InspectionLevel = Literal["S-1", "S-2", "S-3", "S-4", "I", "II", "III"]
INSPECTION_LEVELS: tuple[str, ...] = ("S-1", "S-2", "S-3", "S-4", "I", "II", "III")

CODE_LETTERS: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "Q", "R")
SAMPLE_SIZES: dict[str, int] = dict(
    zip(CODE_LETTERS, (2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200, 315, 500, 800, 1250, 2000), strict=True)
)

# Table 2-A columns: the preferred AQL values (percent nonconforming up to 10, nonconformities per 100 above).
AQL_VALUES: tuple[float, ...] = (
    0.010, 0.015, 0.025, 0.040, 0.065, 0.10, 0.15, 0.25, 0.40, 0.65, 1.0, 1.5, 2.5, 4.0, 6.5,
    10.0, 15.0, 25.0, 40.0, 65.0, 100.0, 150.0, 250.0, 400.0, 650.0, 1000.0,
)  # fmt: skip

# Table 1: upper bound of each lot size range -> code letters for S-1, S-2, S-3, S-4, I, II, III.
_TABLE_1: tuple[tuple[int | None, str], ...] = (
    (8, "AAAAAAB"),
    (15, "AAAAABC"),
    (25, "AABBBCD"),
    (50, "ABBCCDE"),
    (90, "BBCCCEF"),
    (150, "BBCDDFG"),
    (280, "BCDEEGH"),
    (500, "BCDEFHJ"),
    (1200, "CCEFGJK"),
    (3200, "CDEGHKL"),
    (10000, "CDFGJLM"),
    (35000, "CDFHKMN"),
    (150000, "DEGJLNP"),
    (500000, "DEGJMPQ"),
    (None, "DEHKNQR"),  # 500 001 and over
)

Arrow = Literal["up", "down"]
_UP: Arrow = "up"
_DOWN: Arrow = "down"
_DIAGONAL_AC = {14: 0, 17: 1, 18: 2, 19: 3, 20: 5, 21: 7, 22: 10, 23: 14, 24: 21}
_LAST_ROW_WITH_30_44 = CODE_LETTERS.index("E")  # Ac 30 / 44 are printed for letters A..E only


def normalise_aql(aql: float) -> float:
    """Return the preferred AQL value equal to ``aql`` (float noise tolerated); raise `UnknownAQLError`."""
    if isinstance(aql, bool) or not isinstance(aql, int | float) or not math.isfinite(aql):
        raise UnknownAQLError(aql, AQL_VALUES)
    for value in AQL_VALUES:
        if math.isclose(aql, value, rel_tol=1e-9):
            return value
    raise UnknownAQLError(aql, AQL_VALUES)


def _check_level(level: str) -> int:
    try:
        return INSPECTION_LEVELS.index(level)
    except ValueError:
        raise UnknownInspectionLevelError(level) from None


def code_letter(lot_size: int, level: str) -> str:
    """Table 1: sample size code letter for a lot size and inspection level (e.g. 1200, "II" -> "J")."""
    if isinstance(lot_size, bool) or not isinstance(lot_size, int) or lot_size < 1:
        raise LotSizeError(lot_size)
    column = _check_level(level)
    for upper, letters in _TABLE_1:
        if upper is None or lot_size <= upper:
            return letters[column]
    raise AssertionError("unreachable: the last Table 1 row is open-ended")  # pragma: no cover


def table_2a_cell(letter: str, aql: float) -> tuple[int, int] | Arrow:
    """The printed Table 2-A cell: ``(Ac, Re)`` or the arrow ``"up"``/``"down"`` (before resolving it)."""
    if letter not in SAMPLE_SIZES:
        raise UnknownInspectionLevelError(f"code letter {letter!r}")
    row = CODE_LETTERS.index(letter)
    column = AQL_VALUES.index(normalise_aql(aql))
    d = row + column
    if d <= 13:
        return _DOWN
    if d == 15:
        return _DOWN if row == 0 else _UP  # A / AQL 10: nothing above A
    if d == 16:
        return _UP if row == len(CODE_LETTERS) - 1 else _DOWN  # R / AQL 0.015: nothing below R
    if d in _DIAGONAL_AC:
        ac = _DIAGONAL_AC[d]
        return ac, ac + 1
    if row <= _LAST_ROW_WITH_30_44 and d in (25, 26):
        ac = 30 if d == 25 else 44
        return ac, ac + 1
    return _UP


class SamplingPlan(BaseModel):
    """A resolved single sampling plan (normal inspection) for one lot and AQL.

    ``table_code`` is the Table 1 letter; ``code`` the letter actually used after following Table 2-A's
    arrows (its sample size applies). ``full_inspection`` is true when every item of the lot is inspected,
    either because the template asks for it or because the plan's sample size reaches the lot size; then
    ``sample_size == lot_size``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lot_size: int
    level: str | None
    aql: float | None
    table_code: str | None
    code: str | None
    sample_size: int
    accept: int
    reject: int
    full_inspection: bool


def plan_for(lot_size: int, level: str, aql: float) -> SamplingPlan:
    """ISO 2859-1 single sampling plan, normal inspection, for ``lot_size`` at ``level`` and ``aql``.

    Follows the arrows of Table 2-A (the sample size changes with the letter). When the resulting sample
    size is >= the lot size the plan becomes 100 % inspection of the lot with the same Ac/Re.
    Example: ``plan_for(1200, "II", 1.0)`` -> code J, n=80, Ac 2, Re 3.
    """
    table_code = code_letter(lot_size, level)
    aql_value = normalise_aql(aql)
    row = CODE_LETTERS.index(table_code)
    while True:
        cell = table_2a_cell(CODE_LETTERS[row], aql_value)
        if cell == _UP:
            row -= 1
        elif cell == _DOWN:
            row += 1
        else:
            break
    assert isinstance(cell, tuple)
    code = CODE_LETTERS[row]
    n = SAMPLE_SIZES[code]
    full = n >= lot_size
    return SamplingPlan(
        lot_size=lot_size,
        level=level,
        aql=aql_value,
        table_code=table_code,
        code=code,
        sample_size=lot_size if full else n,
        accept=cell[0],
        reject=cell[1],
        full_inspection=full,
    )


def full_inspection_plan(lot_size: int, accept: int = 0) -> SamplingPlan:
    """100 % inspection of the lot: every item is inspected; the lot is accepted with <= ``accept`` defectives."""
    if isinstance(lot_size, bool) or not isinstance(lot_size, int) or lot_size < 1:
        raise LotSizeError(lot_size)
    return SamplingPlan(
        lot_size=lot_size,
        level=None,
        aql=None,
        table_code=None,
        code=None,
        sample_size=lot_size,
        accept=accept,
        reject=accept + 1,
        full_inspection=True,
    )
