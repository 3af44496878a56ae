"""Who acts: the roles and the signed-in user as services, rules and the audit trail see them.

Plain values (no SQLAlchemy, no web) so pure rules and the audit chain can name a role without
reaching the database layer; ``field_api.auth`` stores them and resolves tokens into them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    crew = "crew"
    inspector = "inspector"
    planner = "planner"
    service = "service"
    storekeeper = "storekeeper"
    dispatcher = "dispatcher"
    admin = "admin"


@dataclass(frozen=True)
class Principal:
    """The signed-in user as the services see it."""

    user_id: int
    name: str
    role: Role
    crew_id: int | None = None
    district_id: int | None = None
