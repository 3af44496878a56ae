"""Each finding records the model (name, version) that proposed it; photos flag truncated JPEGs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 02:50:15.425299
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("model_version", sa.String(length=64), nullable=True))

    with op.batch_alter_table("inspection_photos", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("truncated", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("inspection_photos", schema=None) as batch_op:
        batch_op.drop_column("truncated")

    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_column("model_version")
        batch_op.drop_column("model")
