"""Batch analysis (Step 4): observations, anomaly verdicts, root-cause analysis. Being built: hooks only."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from app.db import Batch
from app.settings import Settings
from parsers.model import InspectionBatch

__all__ = ["on_batch_stored", "run_due"]


def on_batch_stored(*, session: Session, batch: Batch, inspection: InspectionBatch) -> None:
    """Called inside the upload transaction once the batch row exists (persist what analysis needs)."""


def run_due(*, sessions: sessionmaker[Session], settings: Settings) -> int:
    """Called by the worker on every pass; returns how many analyses it completed."""
    return 0
