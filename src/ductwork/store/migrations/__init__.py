"""Alembic migrations: one stream for every backend, driven by ``ductwork.store.migrate``."""
