"""API schemas (pydantic): what clients send and receive. Table models live in :mod:`app.db`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from app.inputs import UINT256_MAX, Ref, SafeText

__all__ = [
    "ERROR_RESPONSES",
    "AgreementCreate",
    "AgreementPublic",
    "AmountIn",
    "AnchorReceiptPublic",
    "ApiKeyCreate",
    "ApiKeyInfo",
    "ApiKeyPublic",
    "BatchFileDetail",
    "BatchFilePublic",
    "BatchPublic",
    "ChainInfo",
    "ErrorBody",
    "ErrorDetail",
    "InspectionIn",
    "PartyCreate",
    "PartyCreated",
    "PartyPublic",
    "PreparedTxPublic",
    "RecordPublic",
    "RelayedTxPublic",
    "SignatureIn",
    "SignedTxIn",
    "TemplateCreate",
    "TemplateDetail",
    "TemplateDraft",
    "TemplatePublic",
    "VerificationPublic",
]

PartyKind = Literal["oem", "supplier", "lab"]


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code``, a sentence naming the problem, and facts (field, limit, ...)."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorBody(BaseModel):
    """The one error shape of the gateway, for every status >= 400."""

    error: ErrorDetail


_ERROR_STATUSES = {
    400: "malformed request",
    401: "no, unknown, revoked or expired API key",
    403: "authenticated, but this role or party may not do this",
    404: "does not exist for this caller",
    409: "conflicts with the current state (or a contract revert, named)",
    413: "request body over the limit",
    422: "invalid input, naming the field",
    429: "locked out after repeated failed authentication (see Retry-After)",
    502: "the chain node answered with an error",
    503: "the chain node or the database is unavailable, or no parser slot freed up in time; nothing was stored",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERROR_STATUSES.items()
}


class PartyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SafeText = Field(min_length=1, max_length=200)
    kind: PartyKind
    account: str = Field(description="the party's own on-chain account (0x address)")
    accreditation_id: SafeText | None = Field(
        default=None, max_length=64, description="labs: e.g. 'DAkkS D-K-15195-01'"
    )
    accreditation_expires: datetime | None = None
    certificate_pem: str | None = Field(
        default=None,
        max_length=64_000,
        description="labs: PEM X.509 certificate their signed reports (PDF, DCC) must carry",
    )

    @field_validator("certificate_pem")
    @classmethod
    def _certificate(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from cryptography import x509

        try:
            x509.load_pem_x509_certificate(v.encode())
        except ValueError as exc:
            raise ValueError(f"not a PEM X.509 certificate: {exc}") from exc
        return v

    @field_validator("account")
    @classmethod
    def _address(cls, v: str) -> str:
        from eth_utils import is_address, to_checksum_address

        if not is_address(v):
            raise ValueError(f"not an Ethereum address: {v!r}")
        return str(to_checksum_address(v))


class PartyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    account: str | None
    accreditation_id: str | None = None
    accreditation_expires: datetime | None = None
    chain_tx: str | None = None
    certificate_sha256: str | None = None
    created_at: datetime


class PartyCreated(PartyPublic):
    api_key: str = Field(description="shown once; store it safely")


class ApiKeyCreate(BaseModel):
    """A new key for a party: an optional label and expiry (timezone-aware, at most 3 years ahead)."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, max_length=100)
    expires_at: datetime | None = None


class ApiKeyInfo(BaseModel):
    """An API key as listed: never the key or its hash, only what identifies and dates it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    party_id: int
    prefix: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyPublic(BaseModel):
    party_id: int
    api_key: str = Field(description="shown once; store it safely")
    id: int | None = None
    label: str | None = None
    expires_at: datetime | None = None


class AnchorReceiptPublic(BaseModel):
    chain_id: int | None
    registry: str | None
    tx_hash: str | None
    block_number: int | None
    anchored_at: datetime | None
    commitment: str | None


class BatchFilePublic(BaseModel):
    sha256: str
    filename: str | None
    format: str
    kind: str
    size: int
    signature_verdict: str | None = None


class BatchFileDetail(BatchFilePublic):
    """A file of a batch with its parsed content (lab reports: every field with its provenance)."""

    batch_id: str
    anchored: bool
    report: dict[str, Any] | None = Field(default=None, description="normalised LabReport with provenance")
    report_record_index: int | None = Field(default=None, description="record leaf holding the report's canonical JSON")


class BatchPublic(BaseModel):
    id: str
    batch_id: str
    supplier: str
    supplier_account: str | None
    part_number: str | None
    lot_id: str | None
    record_count: int
    leaf_count: int
    root: str
    report_hash: str
    status: Literal["pending", "anchored"]
    agreement_id: str | None = None
    lot_size: int | None = None
    verdict: Literal["none", "accept", "reject"] = "none"
    assessment: dict[str, Any] | None = Field(default=None, description="acceptance check against the template")
    receipt: AnchorReceiptPublic | None
    anchor_attempts: int
    anchor_error: str | None
    files: list[BatchFilePublic]
    review_required: bool = Field(
        default=False, description="a lab report of this batch needs a person's review (see review_reasons)"
    )
    review_reasons: list[str] = Field(default_factory=list, description="e.g. 'report.pdf: no result rows were found'")
    created_at: datetime
    created: bool = Field(default=True, description="false when an identical upload returned the existing batch")


class RecordPublic(BaseModel):
    index: int
    record: dict[str, Any]
    leaf_hash: str


class ChainInfo(BaseModel):
    chain_id: int
    rpc_url: str
    contracts: dict[str, str]
    relayer: str
    head_block: int


class VerificationPublic(BaseModel):
    ok: bool
    checks: list[str]
    failure: str | None = None
    batch_id: str | None = None
    supplier: str | None = None
    anchored_at: datetime | None = None
    tx_hash: str | None = None
    block_number: int | None = None


# -- templates, agreements, deposits --------------------------------------------------------------------------
class PreparedTxPublic(BaseModel):
    """An unsigned transaction for the calling party to sign with its own key and post back."""

    description: str
    tx: dict[str, Any]


class TemplateCreate(BaseModel):
    document: dict[str, Any] = Field(description="the template document (schema qcn-template/1)")


class TemplatePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    template_id: str
    version: int
    oem_id: int
    chain_template_id: str
    document_hash: str
    status: str
    chain_tx: str | None
    created_at: datetime


class TemplateDetail(TemplatePublic):
    document: dict[str, Any]


class TemplateDraft(BaseModel):
    template: TemplatePublic
    transactions: list[PreparedTxPublic]


class SignedTxIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    raw: list[Annotated[str, Field(min_length=4, max_length=262_146, pattern=r"^0x([0-9a-fA-F]{2})+$")]] = Field(
        min_length=1, max_length=16, description="raw signed transactions (0x hex), in nonce order"
    )


class AmountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(gt=0, le=UINT256_MAX, description="token units (the settlement token's smallest unit)")


class InspectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: Ref = Field(description="the batch delivered under the agreement: its id or on-chain 0x id")
    accepted: StrictBool = Field(description="the incoming-inspection result: true accepted, false rejected")


class AgreementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: int = Field(ge=1, le=2**31 - 1, description="template id (as listed by GET /v1/templates), published")
    supplier_id: int = Field(ge=1, le=2**31 - 1)
    lab_id: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="lab assigned to tracing cases under this agreement"
    )


class SignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signature: str = Field(
        max_length=200, pattern=r"^0x[0-9a-fA-F]+$", description="EIP-712 signature (0x hex, 65 bytes) over the terms"
    )


class AgreementPublic(BaseModel):
    id: int
    agreement_id: str
    template: TemplatePublic
    oem_id: int
    supplier_id: int
    lab_id: int | None
    status: str
    signed_by_oem: bool
    signed_by_supplier: bool
    chain_tx: str | None
    on_chain: dict[str, Any] | None = None
    typed_data: dict[str, Any] | None = None
    created_at: datetime


class RelayedTxPublic(BaseModel):
    tx_hash: str
    block_number: int
    gas_used: int
    function: str
