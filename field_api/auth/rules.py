"""Pure rules of tokens and access."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from field_api.common.actors import Principal, Role

TOKEN_PREFIX = "fo_"

# Fixed tokens of the demo users; refused in production.
DEMO_TOKENS: dict[str, str] = {
    "admin": "fo_demo_admin_0000000000000000",
    "crew": "fo_demo_crew_a_000000000000000",
    "crew_b": "fo_demo_crew_b_000000000000000",
    "crew_c": "fo_demo_crew_c_000000000000000",
    "repair_crew": "fo_demo_repair_00000000000000",
    "inspector": "fo_demo_inspector_000000000000",
    "planner": "fo_demo_planner_00000000000000",
    "service": "fo_demo_service_00000000000000",
    "storekeeper": "fo_demo_storekeeper_0000000000",
    "dispatcher": "fo_demo_dispatcher_00000000000",
}


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str, *, pepper: str) -> str:
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()


def is_demo_token(token: str) -> bool:
    return any(hmac.compare_digest(token, t) for t in DEMO_TOKENS.values())


def may_touch_crew_work(principal: Principal, crew_id: int | None, *, write: bool) -> bool:
    """Crews act on their own crew's orders; planners read all; admins and service do all."""
    if principal.role in (Role.admin, Role.service):
        return True
    if principal.role in (Role.planner, Role.storekeeper):
        return not write
    if principal.role == Role.crew:
        return crew_id is not None and principal.crew_id == crew_id
    return False
