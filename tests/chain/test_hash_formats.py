"""The one canonical-JSON hash, versioned: hand-written vectors for RFC 8785 and the legacy sorted-keys form,
and proof that hashes stored before the switch (evidence hashes, ``qcn-analysis/1`` documents) still verify."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785

from app.analysis.engine import FORMAT, canonical, verify_document
from app.services.cases import evidence_hash_of
from chain.canonical import (
    CURRENT_HASH_FORMAT,
    CanonicalizationError,
    HashFormat,
    canonical_json,
    json_sha256,
)

VALUE = {"d": None, "c": [1.0, 2.5, 1e21], "b": 1e-7, "a": "é"}
# written by hand from RFC 8785 section 3.2 (ES6 number form, UTF-8, keys sorted by UTF-16 units)
RFC8785_TEXT = '{"a":"é","b":1e-7,"c":[1,2.5,1e+21],"d":null}'
RFC8785_SHA256 = "8e9c5633d57b0d53449164b56560934e18e27f9df013e86ec475c7ddb0c86236"
# Python's repr numbers: 1.0 stays 1.0, 1e-7 is written 1e-07
LEGACY_TEXT = '{"a":"é","b":1e-07,"c":[1.0,2.5,1e+21],"d":null}'
LEGACY_SHA256 = "bdabd1bf4f8aa8226d825e683f4598181690ca8c551a72b3a544070562f61ed2"


def test_rfc8785_is_the_current_format_and_matches_the_hand_written_vector() -> None:
    assert CURRENT_HASH_FORMAT is HashFormat.RFC8785
    assert canonical_json(VALUE) == RFC8785_TEXT.encode("utf-8")
    assert json_sha256(VALUE) == RFC8785_SHA256 == hashlib.sha256(RFC8785_TEXT.encode()).hexdigest()


def test_the_legacy_format_reproduces_the_old_json_dumps_bytes() -> None:
    assert canonical_json(VALUE, HashFormat.LEGACY_JSON) == LEGACY_TEXT.encode("utf-8")
    assert json_sha256(VALUE, HashFormat.LEGACY_JSON) == LEGACY_SHA256


def test_keys_beyond_the_basic_plane_sort_by_utf16_units_only_in_rfc8785() -> None:
    value = {"\uffff": 1, "\U0001f600": 2}  # code points: U+FFFF first; UTF-16: D83D DE00 < FFFF
    assert canonical_json(value).decode() == '{"\U0001f600":2,"\uffff":1}'
    assert canonical_json(value, HashFormat.LEGACY_JSON).decode() == '{"\uffff":1,"\U0001f600":2}'


@pytest.mark.parametrize("fmt", list(HashFormat))
def test_non_finite_numbers_are_refused_in_every_format(fmt: HashFormat) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json({"x": float("nan")}, fmt)


def test_evidence_hashes_made_before_the_switch_still_verify() -> None:
    # the old code: sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")))
    old = "0x" + hashlib.sha256(b'{"case_id":"0x01","files":["aa","bb"]}').hexdigest()
    assert old == "0xc7cf8d06be7efbac883ef434946e8c1b31e846ed8f0168d551ed9d430374e534"
    assert evidence_hash_of("0x01", ["bb", "aa"]) == old


def _analysis_doc(fmt: str) -> dict[str, object]:
    return {"format": fmt, "verdict": {"score": 1.0, "threshold": 1e-7}, "profile": "électrode"}


def test_a_stored_v1_analysis_document_still_verifies_and_new_ones_are_rfc8785() -> None:
    old_text = '{"format":"qcn-analysis/1","profile":"électrode","verdict":{"score":1.0,"threshold":1e-07}}'
    old_hash = hashlib.sha256(old_text.encode()).hexdigest()
    assert canonical(_analysis_doc("qcn-analysis/1")) == old_text
    assert verify_document(old_text, old_hash)

    assert FORMAT == "qcn-analysis/3"
    new_text = canonical(_analysis_doc(FORMAT))
    assert new_text == '{"format":"qcn-analysis/3","profile":"électrode","verdict":{"score":1,"threshold":1e-7}}'
    assert verify_document(new_text, "0x" + hashlib.sha256(new_text.encode()).hexdigest())


def test_a_document_whose_bytes_are_not_its_format_does_not_verify() -> None:
    # a v2 tag on legacy bytes (or any re-serialisation) is caught even when the hash of the bytes matches
    text = json.dumps(_analysis_doc("qcn-analysis/2"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert not verify_document(text, hashlib.sha256(text.encode()).hexdigest())
    assert not verify_document(canonical(_analysis_doc(FORMAT)), "0" * 64)


def _legacy_sha(obj: object) -> str:
    """What models/ hashed before (models.base.sha256_json and BatchAnomalyVerdict.sha256 up to qcn-analysis/2)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_model_hashes_are_rfc8785_now_and_the_legacy_form_still_reproduces_stored_ones() -> None:
    from models.base import sha256_json

    params = {"coef": {"temperature_c": [0.5, 1e-7, 2.0]}, "édges": [["a", "b"]], "rows": 3}
    assert sha256_json(params, HashFormat.LEGACY_JSON) == _legacy_sha(params)
    assert sha256_json(params) == hashlib.sha256(rfc8785.dumps(params)).hexdigest()
    assert sha256_json(params) != _legacy_sha(params)  # 1e-07 vs 1e-7, 2.0 vs 2: the tag matters


def test_an_analysis_document_names_how_its_verdict_hash_was_made() -> None:
    from app.analysis.engine import verify_verdict_hash
    from models.verdict import BatchAnomalyVerdict

    verdict = BatchAnomalyVerdict(
        anomalous=False, complete=True, reasons=[], n_measurements=4, n_samples=2,
        spec_checked=["thickness_nm"], spc_checked=[], model_threshold=1e-7,
    )  # fmt: skip
    body = verdict.model_dump(mode="json")
    stored = {"format": "qcn-analysis/2", "verdict": body, "verdict_sha256": _legacy_sha(body)}
    assert verify_verdict_hash(stored)  # stored before: sorted-keys JSON, still verifies
    new = {"format": FORMAT, "verdict": body, "verdict_sha256": verdict.sha256()}
    assert verify_verdict_hash(new) and verdict.sha256() == hashlib.sha256(rfc8785.dumps(body)).hexdigest()
    assert not verify_verdict_hash({**new, "verdict_sha256": _legacy_sha(body)})  # a /3 tag on a legacy hash
    assert not verify_verdict_hash({**stored, "format": "qcn-analysis/9"})
