"""Alembic environment: runs on the connection handed over by :func:`app.db.upgrade` (or the URL in QCN_*)."""

from __future__ import annotations

from alembic import context

from app.db import Base, make_engine

target_metadata = Base.metadata
config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    from app.settings import get_settings

    engine = make_engine(get_settings().db_url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
