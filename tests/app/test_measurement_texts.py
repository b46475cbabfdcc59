"""The upload path writes each measurement's canonical record straight from its fields: the bytes must be exactly
the reference RFC 8785 canonicalisation of ``{"batch": id, **measurement.record()}`` (what every verifier
recomputes), for any strings, numbers and dates a parser can produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.batches import measurement_texts
from chain.canonical import canonical_bytes
from parsers import parse
from parsers.model import Measurement
from parsers.provenance import Provenance

BATCH = "0x" + "5a" * 32
PROV = Provenance(file_sha256="0" * 64, kind="table", row=2, column="value")


def _reference(measurements: list[Measurement]) -> list[bytes]:
    return [canonical_bytes({"batch": BATCH, **m.record()}) for m in measurements]


def _m(**fields: object) -> Measurement:
    base: dict[str, object] = {"sample_id": "S1", "characteristic": "thickness", "value": 1.5, "unit": "um"}
    return Measurement(provenance=PROV, **(base | fields))


def test_the_fields_written_are_exactly_the_records_keys() -> None:
    # a new field in Measurement.record() must reach the fast path too (or this fails)
    assert set(_m().record()) == {
        "sample", "characteristic", "value", "unit", "uncertainty", "coverage_factor", "measured_at",
    }  # fmt: skip


def test_edge_values_match_the_reference() -> None:
    cases = [
        _m(value=-0.0),
        _m(value=0.0, uncertainty=0.0),
        _m(value=1e21, coverage_factor=2.0),
        _m(value=1e-7, uncertainty=5e-324),
        _m(value=123456789012345680.0),
        _m(value=1.7976931348623157e308),
        _m(value=100.0, unit="", sample_id='"quoted"\\back'),
        _m(characteristic="Dicke (µm) \u2028 \x07 \t\n", unit="°C", sample_id="样品-1"),
        _m(characteristic="emoji 🧪", measured_at=datetime(2026, 12, 6, 4, 0, tzinfo=UTC)),
        _m(measured_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))),
        _m(measured_at=datetime(2026, 1, 2, 3, 4, 5)),  # naive, as a table without a zone gives it
        _m(value=7),  # an int from a validated model (pydantic keeps float): same text either way
    ]
    assert measurement_texts(BATCH, cases) == _reference(cases)


def test_a_parsed_csv_gives_the_reference_bytes() -> None:
    csv = (
        "sample_id;characteristic;value;unit;uncertainty;k;measured_at\n"
        "S1;Dicke;12,30;µm;0,05;2;2026-03-01T10:00:00+01:00\n"
        "S2;Dicke;-0,0;µm;;;2026-03-01\n"
        "S3;Breite;1e21;mm;0;1;\n"
    ).encode()
    parsed = parse(csv, filename="lot.csv")
    assert parsed.inspection is not None
    measurements = parsed.inspection.measurements
    assert len(measurements) == 3
    assert measurement_texts(BATCH, measurements) == _reference(measurements)


_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20)
_finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    sample=_text,
    characteristic=_text,
    unit=st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
    value=_finite,
    uncertainty=st.none() | st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    k=st.none() | st.floats(min_value=1e-9, allow_nan=False, allow_infinity=False),
    at=st.none() | st.datetimes(timezones=st.none() | st.just(UTC)),
)
def test_random_measurements_match_the_reference(
    sample: str,
    characteristic: str,
    unit: str,
    value: float,
    uncertainty: float | None,
    k: float | None,
    at: datetime | None,
) -> None:
    m = _m(
        sample_id=sample,
        characteristic=characteristic,
        unit=unit,
        value=value,
        uncertainty=uncertainty,
        coverage_factor=k,
        measured_at=at,
    )
    assert measurement_texts(BATCH, [m]) == _reference([m])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["thickness", "Dicke (µm)", "\u2028"]),
            st.sampled_from([None, 0.0, -0.0, 0.2, 1e-7, 2.0]),  # uncertainty
            st.sampled_from([None, 2.0, 1.0]),  # coverage factor
            st.sampled_from(["um", "", "°C"]),
            _finite,
            st.none() | st.datetimes(timezones=st.just(UTC)),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_records_sharing_their_characteristic_unit_and_uncertainty_match_the_reference(rows: list[tuple]) -> None:
    """The text around sample and value is written once per variant and reused: records that share some of
    characteristic, coverage factor, uncertainty (0.0 and -0.0 included) and unit still get their own bytes."""
    cases = [
        _m(sample_id=f"S{i}", characteristic=ch, uncertainty=u, coverage_factor=k, unit=unit, value=v, measured_at=at)
        for i, (ch, u, k, unit, v, at) in enumerate(rows)
    ]
    assert measurement_texts(BATCH, cases) == _reference(cases)
