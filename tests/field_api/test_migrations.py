"""The Alembic head builds exactly the schema the models describe."""

from __future__ import annotations

from datetime import datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.audit.models import AuditEvent
from field_api.config import Settings
from field_api.db import Base, make_engine
from field_api.migrations.runner import upgrade
from field_api.wiring import import_all_models


def test_migrations_head_equals_models(committed_url: str) -> None:
    # committed_url already has create_all applied; build a fresh database from migrations.
    engine = _fresh(committed_url)
    upgrade(committed_url)
    import_all_models()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def _fresh(url: str) -> Engine:
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    return engine


def test_an_upgrade_keeps_the_audit_trail_true(committed_url: str, settings: Settings) -> None:
    """Migrations that add columns to audited tables record each row as they left it: after
    an upgrade of a database with data, `fieldops audit verify` finds nothing (without those
    events every such row would read as edited behind the trail's back)."""
    engine = _fresh(committed_url)
    upgrade(committed_url, "0003")
    with Session(engine) as session:  # a batch and its event, as the 0003 code wrote them
        session.execute(
            text(
                "INSERT INTO inspection_batches (id, source, records_sha256, produced_at,"
                " imported_at, counts) VALUES ('b1', 'flight-1', :sha, :at, :at, '{}')"
            ),
            {"sha": "0" * 64, "at": datetime(2026, 11, 1, 8, 0)},
        )
        for task in ("t1", "t2"):  # re-imports used to open the same task twice
            session.execute(
                text(
                    "INSERT INTO ledger_tasks (id, batch_id, kind, asset_id, lat, lon,"
                    " sightings, photo_ids, detail, status) VALUES"
                    " (:id, 'b1', 'uninspected', 'P-1', 22.5, 113.9, 0, '[]', '', 'open')"
                ),
                {"id": task},
            )
        assert audit.record_schema_change(
            session,
            tables=["inspection_batches", "ledger_tasks"],
            revision="0003-era",
            settings=settings,
        ) == 3
        session.commit()
    upgrade(committed_url)
    with Session(engine) as session:
        assert audit.verify(session) == []
        actions = session.execute(select(AuditEvent.action)).scalars().all()
        statuses = session.execute(
            text("SELECT id, status FROM ledger_tasks ORDER BY id")
        ).all()
    engine.dispose()
    assert actions[-1].startswith("schema.")  # the upgrade's own record of the rows
    # one task stays open (the unique index holds), the duplicate is dismissed
    assert [s for _, s in statuses] == ["dismissed", "open"]
