"""Batch analysis: anomaly verdict + root cause, counterfactuals, safe domain, charts, model versions.

Readers: whoever may see the batch (:mod:`app.policy`; others get 404, as for the batch itself). Rescoring:
the OEM of the batch's agreement or the admin. Model refresh: the admin.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field, model_validator

from app import policy
from app.auth import require_role
from app.deps import CurrentPrincipal, DbSession, SettingsDep
from app.inputs import DbId, FiniteFloat, RefPath
from app.services import analysis as service
from app.services import batches as batch_service

router = APIRouter(tags=["analysis"])

_MEDIA = {"svg": "image/svg+xml", "png": "image/png"}


class CounterfactualIn(BaseModel):
    """Exactly one of ``value``, ``range`` or ``within_pct`` (of the variable's nominal value)."""

    variable: str = Field(min_length=1, max_length=200)
    characteristic: str = Field(min_length=1, max_length=200)
    value: FiniteFloat | None = None
    range: tuple[FiniteFloat, FiniteFloat] | None = None
    within_pct: Annotated[float | None, Field(gt=0, le=100, allow_inf_nan=False)] = None
    sample_id: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_intervention(self) -> CounterfactualIn:
        if sum(v is not None for v in (self.value, self.range, self.within_pct)) != 1:
            raise ValueError("give exactly one of 'value', 'range' or 'within_pct'")
        if self.range is not None and not self.range[0] <= self.range[1]:
            raise ValueError("range must be [lo, hi] with lo <= hi")
        return self


class SafeDomainIn(BaseModel):
    variables: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=2, max_length=3)
    characteristic: str = Field(min_length=1, max_length=200)
    sample_id: str | None = Field(default=None, max_length=200)


class RefreshIn(BaseModel):
    profile: str = Field(min_length=1, max_length=100)
    causal: bool = True
    anomaly: bool = True


@router.get("/v1/batches/{batch_ref}/analysis")
def get_analysis(batch_ref: RefPath, principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    """The batch's latest anomaly verdict and root-cause report, or ``{"status": "pending"}``."""
    batch = batch_service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    return service.get_analysis(session=session, batch=batch)


@router.post("/v1/batches/{batch_ref}/analysis")
def rescore(
    batch_ref: RefPath, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> dict[str, Any]:
    """Analyse the batch again now (stored as the next analysis version)."""
    batch = batch_service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    policy.require_rescore(session=session, principal=principal, batch=batch)
    return service.rescore(session=session, settings=settings, batch=batch)


@router.post("/v1/batches/{batch_ref}/counterfactual")
def counterfactual(
    batch_ref: RefPath, body: CounterfactualIn, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> dict[str, Any]:
    """Would the characteristic have been in spec had the variable been as given? (answer + probability)"""
    batch = batch_service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    return service.counterfactual_query(
        session=session,
        settings=settings,
        batch=batch,
        variable=body.variable,
        characteristic=body.characteristic,
        value=body.value,
        value_range=body.range,
        within_pct=body.within_pct,
        sample_id=body.sample_id,
    )


@router.post("/v1/batches/{batch_ref}/safe-domain")
def safe_domain(
    batch_ref: RefPath, body: SafeDomainIn, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> dict[str, Any]:
    """Whether the batch's combination of 2-3 variables keeps the characteristic in spec, and the margin."""
    batch = batch_service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    return service.safe_domain_query(
        session=session,
        settings=settings,
        batch=batch,
        variables=body.variables,
        characteristic=body.characteristic,
        sample_id=body.sample_id,
    )


@router.get("/v1/batches/{batch_ref}/charts/{characteristic}.{fmt}")
def chart(
    batch_ref: RefPath,
    characteristic: Annotated[str, Path(min_length=1, max_length=200)],
    fmt: Literal["svg", "png"],
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> Response:
    """Control chart of one characteristic (history + this batch) with rule violations marked."""
    batch = batch_service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    data = service.spc_chart(session=session, settings=settings, batch=batch, characteristic=characteristic, fmt=fmt)
    return Response(content=data, media_type=_MEDIA[fmt])


@router.get("/v1/batches/{batch_ref}/causal-graph.svg")
def causal_graph(
    batch_ref: RefPath, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> Response:
    """The profile's causal graph, the anomalous characteristic and the top-ranked path highlighted."""
    batch = batch_service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    return Response(
        content=service.graph_image(session=session, settings=settings, batch=batch), media_type=_MEDIA["svg"]
    )


@router.post("/v1/models/refresh", status_code=202)
def refresh_models(
    body: RefreshIn, request: Request, principal: CurrentPrincipal, settings: SettingsDep
) -> dict[str, Any]:
    """Admin: re-learn a profile's causal model and/or retrain its anomaly model from clean history.

    Training takes a while: the answer (202) is the job; follow it at ``GET /v1/models/refresh/{job_id}``.
    """
    policy.require_model_admin(principal)
    sessions = request.app.state.session_factory
    job = service.start_refresh(
        sessions=sessions,
        settings=settings,
        profile=body.profile,
        causal=body.causal,
        anomaly=body.anomaly,
        requested_by=principal.party_id,
    )
    service.launch_refresh(job["job_id"], sessions=sessions, settings=settings)
    return job


@router.get("/v1/models/refresh/{job_id}")
def refresh_status(job_id: DbId, principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    """A model refresh job: status (pending, running, done, failed), stage, steps done of total, result."""
    policy.require_model_admin(principal)
    return service.refresh_status(session=session, job_id=job_id)


@router.get("/v1/models")
def list_models(principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> dict[str, Any]:
    """Anomaly model versions with SHA-256 and causal graph versions with hash."""
    require_role(principal, "oem", "admin", "supplier", "lab")
    return service.list_models(session=session, settings=settings)
