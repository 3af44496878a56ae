"""Webhooks a subscriber can rely on: per-order sequence numbers, their counters, secret rotation
(the previous secret and its expiry) and re-sent dead letters

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 02:47:20.500209

The events already in the outbox get their sequence numbers here, per order in the order they
were written (the lowest row id of each event), and each order's counter starts after them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import field_api.db
from field_api.migrations.audited import record_schema_change

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_order_sequences",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["work_orders.id"],
            name=op.f("fk_webhook_order_sequences_order_id_work_orders"),
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_webhook_order_sequences")),
    )
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("resent_at", field_api.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_webhook_outbox_lane",
            ["subscription_id", "status", "order_id", "sequence"],
            unique=False,
        )

    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column(
                "previous_secret_expires_at",
                field_api.db.UtcDateTime(timezone=True),
                nullable=True,
            )
        )
    _number_existing_events()
    record_schema_change("0008", ["webhook_subscriptions"])


def _number_existing_events() -> None:
    bind = op.get_bind()
    events = bind.execute(
        sa.text(
            "SELECT order_id, event_id, MIN(id) AS first FROM webhook_outbox "
            "WHERE order_id IS NOT NULL GROUP BY order_id, event_id ORDER BY order_id, first"
        )
    ).all()
    last: dict[int, int] = {}
    for order_id, event_id, _ in events:
        last[order_id] = last.get(order_id, 0) + 1
        bind.execute(
            sa.text("UPDATE webhook_outbox SET sequence = :n WHERE event_id = :e"),
            {"n": last[order_id], "e": event_id},
        )
    for order_id, n in last.items():
        bind.execute(
            sa.text(
                "INSERT INTO webhook_order_sequences (order_id, last_sequence) VALUES (:o, :n)"
            ),
            {"o": order_id, "n": n},
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret")

    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_outbox_lane")
        batch_op.drop_column("resent_at")
        batch_op.drop_column("sequence")

    op.drop_table("webhook_order_sequences")
