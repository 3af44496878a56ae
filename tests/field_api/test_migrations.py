"""The Alembic head builds exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from field_api.db import Base, import_all_models, make_engine
from field_api.migrations.runner import upgrade


def test_migrations_head_equals_models(committed_url: str) -> None:
    # committed_url already has create_all applied; build a fresh database from migrations.
    engine = make_engine(committed_url)
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade(committed_url)
    import_all_models()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
