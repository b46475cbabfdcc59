"""ISO 2859-1 Table 1 / Table 2-A (normal inspection, single sampling) against published table values.

Reference values: ISO 2859-1:1999 Tables 1 and 2-A, identical to ANSI/ASQ Z1.4 and MIL-STD-105E Table II-A.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.quality import (
    AQL_VALUES,
    CODE_LETTERS,
    INSPECTION_LEVELS,
    LotSizeError,
    QualityError,
    SamplingError,
    UnknownAQLError,
    UnknownInspectionLevelError,
    code_letter,
    full_inspection_plan,
    plan_for,
    table_2a_cell,
)


@pytest.mark.parametrize(
    ("lot_size", "level", "letter"),
    [
        (1200, "II", "J"),
        (1201, "II", "K"),
        (2, "S-1", "A"),
        (8, "III", "B"),
        (15, "II", "B"),
        (500, "I", "F"),
        (501, "S-4", "F"),
        (2000, "S-4", "G"),
        (3200, "S-2", "D"),
        (281, "S-3", "D"),
        (10001, "III", "N"),
        (150000, "S-3", "G"),
        (500000, "II", "P"),
        (500001, "II", "Q"),
        (10_000_000, "III", "R"),
        (1, "II", "A"),
    ],
)
def test_table_1_code_letters(lot_size: int, level: str, letter: str) -> None:
    assert code_letter(lot_size, level) == letter


@pytest.mark.parametrize(
    ("lot_size", "level", "aql", "code", "n", "ac", "re"),
    [
        # direct cells
        (1200, "II", 1.0, "J", 80, 2, 3),
        (1200, "II", 0.65, "J", 80, 1, 2),
        (1200, "II", 2.5, "J", 80, 5, 6),
        (1200, "II", 4.0, "J", 80, 7, 8),
        (10000, "II", 4.0, "L", 200, 14, 15),
        (3200, "II", 1.0, "K", 125, 3, 4),
        (3200, "II", 10.0, "K", 125, 21, 22),
        (10000, "II", 0.65, "L", 200, 3, 4),
        (500, "II", 4.0, "H", 50, 5, 6),
        (280, "II", 2.5, "G", 32, 2, 3),
        (150, "II", 0.65, "F", 20, 0, 1),
        (1_000_000, "III", 0.025, "R", 2000, 1, 2),
        # up arrows: the first plan above is used, with its (smaller) sample size
        (280, "II", 0.65, "F", 20, 0, 1),  # G -> F
        (150, "II", 1.0, "E", 13, 0, 1),  # F -> E
        (100_000, "II", 4.0, "M", 315, 21, 22),  # N -> M
        (1_000_000, "III", 0.010, "Q", 1250, 0, 1),  # R -> Q
        (1_000_000, "III", 0.015, "P", 800, 0, 1),  # R -> Q -> P (no plan below R)
        # down arrows: the first plan below is used, with its (larger) sample size
        (280, "II", 1.0, "H", 50, 1, 2),  # G -> H
        (500, "II", 0.65, "J", 80, 1, 2),  # H -> J
        (150, "II", 1.5, "G", 32, 1, 2),  # F -> G
        (100, "S-1", 0.65, "F", 20, 0, 1),  # B -> ... -> F
    ],
)
def test_table_2a_plans(lot_size: int, level: str, aql: float, code: str, n: int, ac: int, re: int) -> None:
    plan = plan_for(lot_size, level, aql)
    assert (plan.code, plan.sample_size, plan.accept, plan.reject) == (code, n, ac, re)
    assert plan.table_code == code_letter(lot_size, level)
    assert plan.full_inspection is False
    assert plan.level == level and plan.aql == aql and plan.lot_size == lot_size


# The printed Ac values of each Table 2-A row, left to right (MIL-STD-105E Table II-A), and the AQL column
# of each row's "0 1" cell.
PRINTED_ROW_AC = {
    "A": [0, 1, 2, 3, 5, 7, 10, 14, 21, 30],
    **{letter: [0, 1, 2, 3, 5, 7, 10, 14, 21, 30, 44] for letter in "BCDE"},
    **{letter: [0, 1, 2, 3, 5, 7, 10, 14, 21] for letter in "FGHJKLMNPQ"},
    "R": [1, 2, 3, 5, 7, 10, 14, 21],
}
ZERO_ONE_COLUMN = dict(
    zip(
        "ABCDEFGHJKLMNPQ",
        [6.5, 4.0, 2.5, 1.5, 1.0, 0.65, 0.40, 0.25, 0.15, 0.10, 0.065, 0.040, 0.025, 0.015, 0.010],
        strict=True,
    )
)


@pytest.mark.parametrize("letter", CODE_LETTERS)
def test_table_2a_rows_match_printed_table(letter: str) -> None:
    cells = [table_2a_cell(letter, aql) for aql in AQL_VALUES]
    plans = [c for c in cells if isinstance(c, tuple)]
    assert [ac for ac, _ in plans] == PRINTED_ROW_AC[letter]
    assert all(re == ac + 1 for ac, re in plans)
    if letter in ZERO_ONE_COLUMN:
        assert table_2a_cell(letter, ZERO_ONE_COLUMN[letter]) == (0, 1)
        # every column left of the 0/1 cell is a "use the plan below" arrow
        left = AQL_VALUES[: AQL_VALUES.index(ZERO_ONE_COLUMN[letter])]
        assert {table_2a_cell(letter, a) for a in left} <= {"down"}


def test_arrow_cells() -> None:
    assert table_2a_cell("G", 0.65) == "up"
    assert table_2a_cell("G", 1.0) == "down"
    assert table_2a_cell("K", 15) == "up"
    assert table_2a_cell("R", 0.015) == "up"  # nothing below R
    assert table_2a_cell("A", 10) == "down"  # nothing above A


def test_sample_size_reaching_the_lot_means_100_percent_inspection() -> None:
    # lot 8, level II -> A; AQL 0.65 -> arrows down to F (n=20) which exceeds the lot
    plan = plan_for(8, "II", 0.65)
    assert plan.full_inspection is True
    assert (plan.code, plan.sample_size, plan.accept, plan.reject) == ("F", 8, 0, 1)
    regular = plan_for(20, "II", 10.0)  # C, n=5 < 20: regular sampling
    assert (regular.full_inspection, regular.sample_size, regular.accept) == (False, 5, 1)
    assert plan_for(5, "II", 10.0).full_inspection is True  # same plan, n=5 reaches the lot of 5


def test_full_inspection_plan() -> None:
    plan = full_inspection_plan(40, accept=1)
    assert (plan.sample_size, plan.accept, plan.reject, plan.full_inspection) == (40, 1, 2, True)
    assert plan.code is None and plan.aql is None


def test_aql_float_noise_is_tolerated() -> None:
    assert plan_for(1200, "II", 0.1 + 0.2 + 0.35).aql == 0.65


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: plan_for(100, "IV", 1.0), UnknownInspectionLevelError),
        (lambda: plan_for(100, "ii", 1.0), UnknownInspectionLevelError),
        (lambda: plan_for(100, "II", 0.7), UnknownAQLError),
        (lambda: plan_for(100, "II", float("nan")), UnknownAQLError),
        (lambda: plan_for(0, "II", 1.0), LotSizeError),
        (lambda: plan_for(True, "II", 1.0), LotSizeError),
        (lambda: full_inspection_plan(-3), LotSizeError),
    ],
)
def test_errors_name_the_problem(call: Callable[[], object], error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, SamplingError | QualityError)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert any(word in message for word in ("inspection level", "AQL", "lot size"))


def test_unknown_aql_message_lists_allowed_values() -> None:
    with pytest.raises(UnknownAQLError, match=r"0\.7 .*0\.65, 1, 1\.5"):
        plan_for(100, "II", 0.7)


@settings(max_examples=300, deadline=None)
@given(
    lot=st.integers(min_value=1, max_value=2_000_000),
    extra=st.integers(min_value=0, max_value=50_000),
    level=st.sampled_from(INSPECTION_LEVELS),
    aql=st.sampled_from(AQL_VALUES),
)
def test_plans_are_consistent_and_monotone_in_lot_size(lot: int, extra: int, level: str, aql: float) -> None:
    plan = plan_for(lot, level, aql)
    assert 1 <= plan.sample_size <= lot
    assert plan.reject == plan.accept + 1
    assert table_2a_cell(str(plan.code), aql) == (plan.accept, plan.reject)
    # a bigger lot never gets a smaller sample (same level and AQL)
    assert plan_for(lot + extra, level, aql).sample_size >= plan.sample_size
