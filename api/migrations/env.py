"""Alembic environment: runs migrations on the URL set by ``api.db.upgrade_database``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

import api.models
from api.db import Base

config = context.config
target_metadata = Base.metadata
assert api.models  # every table registered


def run_migrations_online() -> None:
    """Run migrations with a live connection."""
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(
            connection=connectable, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
