"""Batch verdict: spec + SPC + model combined, explicit incomplete checks, deterministic JSON."""

from __future__ import annotations

import pandas as pd
import pytest

from models.anomaly import DEFAULT_SPEC, LoadedModel, simulate_characteristics
from models.artifacts import load_default_model
from models.errors import InvalidInput
from models.spc import NELSON
from models.verdict import BatchAnomalyVerdict, score_batch


def long(wide: pd.DataFrame) -> pd.DataFrame:
    """Wide (sample x characteristic) -> the parsers' long format."""
    out = wide.reset_index().melt(id_vars="sample_id", var_name="characteristic", value_name="value")
    return out.assign(unit="x")


HISTORY = long(simulate_characteristics(60, seed=31))


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return load_default_model()


# seed 33: a batch that by chance fires no rule (8 rules x 5 characteristics do have a false-alarm rate)
def batch(seed: int = 33, n: int = 8, **shift: float) -> pd.DataFrame:
    return simulate_characteristics(n, seed=seed, start=1000, shift=shift or None)


def kinds(v: BatchAnomalyVerdict) -> list[str]:
    return [r.kind for r in v.reasons]


def test_in_control_batch_is_clean_and_complete(model) -> None:
    v = score_batch(long(batch()), DEFAULT_SPEC, HISTORY, model)
    assert v.reasons == []
    assert (v.anomalous, v.complete) == (False, True)
    assert v.n_samples == 8 and v.n_measurements == 40
    assert v.spc_checked == sorted(DEFAULT_SPEC)
    assert v.model_version == model.version and len(v.model_scores) == 8
    assert all(s.score > model.threshold for s in v.model_scores)


def test_spec_failure_names_sample_value_and_margin() -> None:
    wide = batch()
    wide.loc["S001003", "thickness_nm"] = 531.5
    v = score_batch(long(wide), DEFAULT_SPEC, HISTORY)
    fails = [r for r in v.reasons if r.kind == "spec_failure"]
    assert len(fails) == 1
    f = fails[0]
    assert (f.characteristic, f.sample_id, f.verdict, f.usl) == ("thickness_nm", "S001003", "fail_high", 530.0)
    assert f.margin == pytest.approx(-1.5)
    assert v.anomalous


def test_spc_rule_fired_on_mean_shift_in_batch() -> None:
    # breakdown voltage 2 sigma low in every sample: in spec, but the run/zone rules catch it
    v = score_batch(long(batch(n=10, breakdown_voltage_v=-13.0)), DEFAULT_SPEC, HISTORY)
    spc = [r for r in v.reasons if r.kind == "spc_rule"]
    assert spc and {r.characteristic for r in spc} == {"breakdown_voltage_v"}
    assert not [r for r in v.reasons if r.kind == "spec_failure"]
    rules = {r.rule for r in spc}
    assert rules & {2, 5, 6}
    r = next(r for r in spc if r.rule in {5, 6})
    assert all(s.startswith("S001") for s in r.sample_ids) and r.batch_indices
    assert v.anomalous


def test_missing_history_is_an_explicit_reason_not_a_clean_result() -> None:
    v = score_batch(long(batch()), DEFAULT_SPEC, history=None)
    hist = [r for r in v.reasons if r.kind == "insufficient_history"]
    assert sorted(r.characteristic for r in hist) == sorted(DEFAULT_SPEC)
    assert all((r.needed, r.got) == (20, 0) for r in hist)
    assert (v.anomalous, v.complete) == (False, False)
    short = score_batch(long(batch()), DEFAULT_SPEC, HISTORY.groupby("characteristic").head(5))
    assert {(r.kind, r.got) for r in short.reasons} == {("insufficient_history", 5)}


def test_characteristic_without_spec_is_reported() -> None:
    spec = {k: v for k, v in DEFAULT_SPEC.items() if k != "uniformity_pct"}
    v = score_batch(long(batch()), spec, HISTORY)
    assert kinds(v) == ["no_spec_limits"] and v.reasons[0].characteristic == "uniformity_pct"
    assert not v.complete and "uniformity_pct" not in v.spec_checked


def test_model_flags_the_multivariate_outlier_with_version(model) -> None:
    wide = batch()
    wide.loc["S001005"] = simulate_characteristics(1, seed=3, shift={"rf_power": 4.5}).iloc[0].to_numpy()
    v = score_batch(long(wide), DEFAULT_SPEC, HISTORY, model, min_history=20)
    flags = [r for r in v.reasons if r.kind == "model_score"]
    assert [f.sample_id for f in flags] == ["S001005"]
    assert flags[0].score < flags[0].threshold == model.threshold
    assert flags[0].model_version == model.version.ref
    assert v.anomalous


def test_missing_model_feature_is_named(model) -> None:
    m = long(batch())
    with pytest.raises(InvalidInput) as err:
        score_batch(m[m["characteristic"] != "refractive_index"], DEFAULT_SPEC, HISTORY, model)
    assert err.value.field == "refractive_index"


def test_bad_measurement_tables_are_named() -> None:
    m = long(batch())
    with pytest.raises(InvalidInput) as err:
        score_batch(m.drop(columns=["value"]), DEFAULT_SPEC)
    assert err.value.field == "value"
    m = m.astype({"value": object})
    m.loc[3, "value"] = "n/a"
    with pytest.raises(InvalidInput, match="row 3") as err:
        score_batch(m, DEFAULT_SPEC)
    dup = pd.concat([long(batch()).iloc[:2], long(batch()).iloc[:1]])
    with pytest.raises(InvalidInput, match="duplicate"):
        score_batch(dup, DEFAULT_SPEC)


def test_verdict_is_deterministic_and_json_round_trips(model) -> None:
    wide = batch(n=10, breakdown_voltage_v=-13.0)
    wide.loc["S001002", "thickness_nm"] = 460.0
    a = score_batch(long(wide), DEFAULT_SPEC, HISTORY, model)
    b = score_batch(long(wide), DEFAULT_SPEC, HISTORY, model)
    assert a.canonical_json() == b.canonical_json() and a.sha256() == b.sha256()
    again = BatchAnomalyVerdict.model_validate_json(a.model_dump_json())
    assert again == a and again.sha256() == a.sha256()
    assert {"spec_failure", "spc_rule"} <= set(kinds(a))


def test_constant_history_is_an_explicit_incomplete_reason_not_a_failure() -> None:
    history = pd.DataFrame(
        {"sample_id": [f"h{i}" for i in range(30)], "characteristic": "thickness", "value": [12.3] * 30}
    )
    batch = pd.DataFrame({"sample_id": ["s1", "s2"], "characteristic": "thickness", "value": [12.3, 12.4]})
    verdict = score_batch(batch, {"thickness": {"lsl": 12.0, "usl": 12.6}}, history=history)
    reasons = [r for r in verdict.reasons if r.kind == "insufficient_history"]
    assert len(reasons) == 1 and "no variation" in reasons[0].message
    assert verdict.complete is False and verdict.anomalous is False


def _one_char_lot(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(values))], "characteristic": "c", "value": values})


def test_lot_wise_limits_keep_one_3_sigma_point_from_opening_a_case() -> None:
    import numpy as np

    from models.verdict import _lot_count, _lot_k

    rng = np.random.default_rng(0)
    base = rng.normal(10.0, 1.0, 400)
    hist = _one_char_lot(list(base))
    center = float(base.mean())
    sigma = float(np.mean(np.abs(np.diff(base)))) / 1.128
    k = _lot_k(3e-4, 20, 400)
    assert 4.0 < k < 5.0  # t quantile at 3e-4 / (2 x 20), 247 dof
    lot = [center] * 19 + [center + 3.5 * sigma]
    v = score_batch(_one_char_lot(lot), {"c": {"lsl": 0, "usl": 20}}, hist, rules=NELSON[:1])
    assert not v.anomalous and [r.severity for r in v.reasons] == ["warning"]
    assert "within the lot-wise limit" in v.reasons[0].message
    per_point = score_batch(_one_char_lot(lot), {"c": {"lsl": 0, "usl": 20}}, hist, rules=NELSON[:1], lot_alpha=None)
    assert per_point.anomalous  # the previous rule: one point beyond 3 sigma opens a case
    far = score_batch(_one_char_lot([center] * 19 + [center + (k + 0.5) * sigma]), {}, hist, rules=NELSON[:1])
    assert far.anomalous and far.reasons[-1].severity == "anomaly"
    shift = score_batch(_one_char_lot([center + 3.2 * sigma] * 6 + [center] * 14), {}, hist, rules=NELSON[:1])
    assert shift.anomalous  # six points beyond 3 sigma in one lot: a shift, whatever each point's size
    # a unit out of spec but within the process's own lot-wise spread: nonconforming, no case
    spec = {"c": {"lsl": 0, "usl": center + 3.2 * sigma}}
    nc = score_batch(_one_char_lot([center] * 19 + [center + 3.5 * sigma]), spec, hist, rules=NELSON[:1])
    assert not nc.anomalous and {r.severity for r in nc.reasons} == {"nonconforming", "warning"}
    assert _lot_count(3e-4, 32, 0.005) == 4 and _lot_count(None, 32, 0.005) == 1


def test_one_value_far_out_is_named_a_shifted_lot_is_not() -> None:
    wide = batch()
    wide.loc["S001003", "thickness_nm"] = 545.0  # one unit far above USL 530
    one = score_batch(long(wide), DEFAULT_SPEC, HISTORY)
    assert one.anomalous
    assert one.single_value() == ("thickness_nm", "S001003")
    wide.loc["S001005", "thickness_nm"] = 545.0  # a second unit: no longer one value
    assert score_batch(long(wide), DEFAULT_SPEC, HISTORY).single_value() is None
    shifted = score_batch(long(batch(thickness_nm=6.0)), DEFAULT_SPEC, HISTORY)
    assert shifted.anomalous and shifted.single_value() is None
    assert score_batch(long(batch()), DEFAULT_SPEC, HISTORY).single_value() is None


@pytest.mark.parametrize("seed", range(6))
def test_rules_read_only_the_baselines_tail_and_give_what_the_whole_baseline_gave(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPC evaluates the rules on the batch after the last points of the baseline they read back to: every
    rule (rule 2 with a longer run too), drifting and alternating data, per-point and lot-wise limits, and the
    history given as rows or as each characteristic's values all give the verdict of the whole baseline."""
    import numpy as np

    import models.verdict as verdict
    from models.spc import RuleSpec

    rng = np.random.default_rng(seed)
    base = rng.normal(10.0, 1.0, 3000)
    base[-40:] += np.linspace(0.0, 2.5, 40)  # a drift into the batch: runs that start in the baseline
    lot = list(base[-1] + rng.normal(0.5, 1.0, 30) * np.where(np.arange(30) % 2, 1.0, -1.0))
    rules = [*NELSON, RuleSpec(rule=2, run=25)] if seed % 2 else list(NELSON)
    batch = _one_char_lot(lot)
    for lot_alpha in (3e-4, None):
        got = score_batch(batch, {}, _one_char_lot(list(base)), rules=rules, lot_alpha=lot_alpha)
        got_values = score_batch(batch, {}, {"c": base}, rules=rules, lot_alpha=lot_alpha)
        with monkeypatch.context() as m:
            m.setattr(verdict, "_look_back", lambda rules: 10**9)  # the whole baseline, as before
            whole = score_batch(batch, {}, _one_char_lot(list(base)), rules=rules, lot_alpha=lot_alpha)
        assert whole.spc_checked == ["c"]
        assert got.model_dump() == whole.model_dump() == got_values.model_dump()
        assert any(r.kind == "spc_rule" for r in whole.reasons)  # the comparison covers fired rules


def test_a_history_value_that_is_not_a_finite_number_is_named() -> None:
    with pytest.raises(InvalidInput, match="history of 'c'"):
        score_batch(_one_char_lot([1.0, 2.0]), {}, {"c": [1.0, float("nan")]})
    with pytest.raises(InvalidInput, match="history of 'c' must be one-dimensional"):
        score_batch(_one_char_lot([1.0, 2.0]), {}, {"c": [[1.0, 2.0]]})


def test_a_baseline_of_a_few_points_still_has_finite_side_spreads() -> None:
    """Outside review: with min_history <= 4 the tail quantile was the median and the spread divided by zero."""
    import math

    import numpy as np

    from models.verdict import _side_sigmas

    for base in ([9.8, 10.1, 10.0, 10.3], [1.0, 2.0, 3.0], list(np.linspace(0.0, 1.0, 7))):
        lo, hi = _side_sigmas(np.asarray(base), 0.1)
        assert math.isfinite(lo) and math.isfinite(hi) and lo >= 0.1 and hi >= 0.1, (base, lo, hi)
    v = score_batch(_one_char_lot([10.0, 10.2]), {}, {"c": [9.8, 10.1, 10.0, 10.3]}, min_history=4)
    assert v.spc_checked == ["c"]


def test_side_spreads_read_the_order_statistics_numpy_median_and_quantile_give() -> None:
    """The baseline's median and tail quantiles come from single-index partitions (numpy's fast path): the same
    values as ``np.median`` and ``np.quantile`` for any size, odd or even, ties, tails at either end."""
    import numpy as np

    from models.verdict import _median_quantiles

    rng = np.random.default_rng(7)
    for trial in range(3000):
        n = int(rng.integers(1, 80)) if trial % 10 else int(rng.integers(80, 3000))
        base = rng.normal(10.0, 1.0, n)
        if trial % 3 == 1:
            base = base.round(1)  # ties
        elif trial % 3 == 2:
            base = rng.integers(0, 4, n).astype(float)
        q = min(max(0.01, 2.0 / n), 0.25) if trial % 2 else float(rng.uniform(0.0, 1.0))
        want = (float(np.median(base)), *(float(v) for v in np.quantile(base, [q, 1 - q])))
        assert _median_quantiles(base, q, 1 - q) == want, (n, q)
        assert _median_quantiles(base, q, 1 - q, ordered=np.sort(base)) == want, (n, q)


def test_a_batch_scored_with_its_sorted_history_gets_the_same_verdict() -> None:
    """``ordered`` (the history sorted, which the analysis keeps up to date across jobs) only spares the
    partition: the same verdict, byte for byte, for clean and anomalous lots; a copy of another size is not used."""
    import numpy as np

    rng = np.random.default_rng(3)
    history = {"c": rng.normal(10.0, 0.1, 4000).round(3)}
    history["c"][::97] += 0.4  # a long upper tail: the side spreads differ from sigma
    for shift in (0.0, 0.05, 0.2, 0.6):
        lot = _one_char_lot((rng.normal(10.0, 0.1, 50) + shift).round(3).tolist())
        spec = {"c": {"lsl": 9.7, "usl": 10.3}}
        plain = score_batch(lot, spec, history)
        fast = score_batch(lot, spec, history, ordered={"c": np.sort(history["c"])})
        wrong = score_batch(lot, spec, history, ordered={"c": np.sort(history["c"])[:-1]})
        assert fast.canonical_json() == plain.canonical_json() == wrong.canonical_json()
    assert plain.anomalous
