"""What a migration that changes audited tables must do for the audit trail.

Adding a column changes every existing row's content (a new NULL or default value), so the
latest event of each row no longer matches it and ``fieldops audit verify`` would report every
row as edited. A migration that alters audited tables calls :func:`record_schema_change` at the
end of its ``upgrade()``: one event per existing row, ``schema.<revision>``, with the row's
content hash as the migration left it (see :func:`field_api.audit.service.record_schema_change`).
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic import op
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.config import get_settings


def record_schema_change(revision: str, tables: Iterable[str]) -> int:
    """Record the rows of ``tables`` as migration ``revision`` left them; returns the count."""
    with Session(bind=op.get_bind()) as session:
        added = audit.record_schema_change(
            session, tables=tables, revision=revision, settings=get_settings()
        )
        session.flush()
    return added
