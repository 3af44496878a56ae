"""Use cases of users, crews, districts and tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.auth.models import ApiToken, Crew, District, User
from field_api.auth.rules import hash_token, is_demo_token, new_token
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import Conflict, NotFound, Unauthorized, ValidationFailed


def get_district_by_code(session: Session, code: str) -> District | None:
    return session.execute(select(District).where(District.code == code)).scalar_one_or_none()


def get_district_or_raise(session: Session, district_id: int) -> District:
    district = session.get(District, district_id)
    if district is None:
        raise NotFound(
            f"district {district_id} not found",
            code="district.not_found",
            params={"district_id": district_id},
        )
    return district


def get_crew_by_code(session: Session, code: str) -> Crew | None:
    return session.execute(select(Crew).where(Crew.code == code)).scalar_one_or_none()


def create_district(
    session: Session, *, code: str, name: str, lv_ceiling_kw: float, actor: Principal | None
) -> District:
    if get_district_by_code(session, code) is not None:
        raise Conflict(
            f"district {code} exists",
            code="district.exists",
            params={"district_code": code},
        )
    district = District(code=code, name=name, lv_ceiling_kw=lv_ceiling_kw)
    session.add(district)
    audit.record(session, actor=actor, action="district.create", entity=district)
    return district


def create_crew(
    session: Session,
    *,
    code: str,
    name: str,
    district_code: str,
    handles_repairs: bool = False,
    actor: Principal | None,
) -> Crew:
    district = get_district_by_code(session, district_code)
    if district is None:
        raise ValidationFailed(
            f"unknown district {district_code}",
            code="district.unknown",
            params={"district_code": district_code},
        )
    if get_crew_by_code(session, code) is not None:
        raise Conflict(f"crew {code} exists", code="crew.exists", params={"crew_code": code})
    crew = Crew(code=code, name=name, district_id=district.id, handles_repairs=handles_repairs)
    session.add(crew)
    audit.record(session, actor=actor, action="crew.create", entity=crew)
    return crew


def create_user(
    session: Session,
    *,
    name: str,
    role: Role,
    crew_code: str | None,
    settings: Settings,
    actor: Principal | None,
    token: str | None = None,
) -> tuple[User, str]:
    """Create a user and a first token; the token is returned once and stored hashed."""
    crew_id: int | None = None
    if role == Role.crew:
        if not crew_code:
            raise ValidationFailed("a crew member needs a crew", code="user.crew_required")
        crew = get_crew_by_code(session, crew_code)
        if crew is None:
            raise ValidationFailed(
                f"unknown crew {crew_code}",
                code="crew.unknown",
                params={"crew_code": crew_code},
            )
        crew_id = crew.id
    elif crew_code:
        raise ValidationFailed(
            "only crew members belong to a crew",
            code="user.crew_not_allowed",
            params={"role": role.value},
        )
    user = User(name=name, role=role, crew_id=crew_id)
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.create", entity=user)
    raw = issue_token(session, user=user, settings=settings, actor=actor, token=token)
    return user, raw


def issue_token(
    session: Session,
    *,
    user: User,
    settings: Settings,
    actor: Principal | None,
    token: str | None = None,
    label: str = "",
) -> str:
    raw = token or new_token()
    if settings.is_production and is_demo_token(raw):
        raise ValidationFailed(
            "demo tokens are refused in production",
            code="auth.demo_token_refused",
        )
    row = ApiToken(
        user_id=user.id,
        token_hash=hash_token(raw, pepper=settings.token_pepper),
        prefix=raw[:12],
        label=label,
    )
    session.add(row)
    audit.record(session, actor=actor, action="token.issue", entity=row)
    return raw


def revoke_token(session: Session, *, token_id: int, actor: Principal) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(
            f"token {token_id} not found",
            code="auth.token_not_found",
            params={"token_id": token_id},
        )
    if row.revoked_at is None:
        owner = session.get(User, row.user_id)
        if owner is not None and owner.role == Role.admin and owner.active:
            _keep_an_admin(session, without_token=row.id, action=f"revoking token {row.id}")
        row.revoked_at = clock.now()
        audit.record(session, actor=actor, action="token.revoke", entity=row)
    return row


def get_user_or_raise(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(
            f"user {user_id} not found", code="auth.user_not_found", params={"user_id": user_id}
        )
    return user


def deactivate_user(session: Session, *, user_id: int, actor: Principal) -> User:
    """Stop a user from signing in (every token stops working); refused for the last admin."""
    user = get_user_or_raise(session, user_id)
    if user.active:
        if user.role == Role.admin:
            _keep_an_admin(session, without_user=user.id, action=f"deactivating user {user.id}")
        user.active = False
        audit.record(session, actor=actor, action="user.deactivate", entity=user)
    return user


def change_role(session: Session, *, user_id: int, role: Role, actor: Principal) -> User:
    """Give a user another role; demoting the last active admin is refused."""
    user = get_user_or_raise(session, user_id)
    if user.role == role:
        return user
    if Role.crew in (role, user.role):
        raise ValidationFailed(
            "a role change cannot move a user into or out of a crew; create a new user",
            code="auth.role_change_crew",
            params={"user_id": user.id},
        )
    if user.role == Role.admin and user.active:
        _keep_an_admin(session, without_user=user.id, action=f"demoting user {user.id}")
    user.role = role
    audit.record(session, actor=actor, action="user.role_change", entity=user)
    return user


def _keep_an_admin(
    session: Session,
    *,
    action: str,
    without_user: int | None = None,
    without_token: int | None = None,
) -> None:
    """Refuse (409) a change to an active admin after which no active admin could sign in.

    An admin counts when the user is active and holds at least one unrevoked token other than
    the one being revoked; the row it finds is locked (PostgreSQL), so two admins revoking each
    other at the same moment cannot both pass (one waits, or the deadlock detector stops it).
    """
    query = (
        select(User.id)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(User.role == Role.admin, User.active.is_(True), ApiToken.revoked_at.is_(None))
    )
    if without_user is not None:
        query = query.where(User.id != without_user)
    if without_token is not None:
        query = query.where(ApiToken.id != without_token)
    if session.execute(query.limit(1).with_for_update()).first() is None:
        raise Conflict(
            f"{action} would leave no active admin able to sign in; create or enable another "
            "admin first",
            code="auth.last_admin",
            params={"action": action},
        )


def authenticate(session: Session, *, token: str, settings: Settings) -> Principal:
    """Resolve a bearer token to a principal or raise ``Unauthorized``."""
    if settings.is_production and is_demo_token(token):
        raise Unauthorized("demo tokens are refused in production", code="auth.demo_token_refused")
    digest = hash_token(token, pepper=settings.token_pepper)
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest)
    ).first()
    if row is None:
        raise Unauthorized("unknown token", code="auth.unknown_token")
    api_token, user = row
    if api_token.revoked_at is not None:
        raise Unauthorized("token revoked", code="auth.token_revoked")
    if not user.active:
        raise Unauthorized("user deactivated", code="auth.user_deactivated")
    district_id = None
    if user.crew_id is not None:
        crew = session.get(Crew, user.crew_id)
        district_id = crew.district_id if crew else None
    return Principal(
        user_id=user.id,
        name=user.name,
        role=user.role,
        crew_id=user.crew_id,
        district_id=district_id,
    )


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.id)).scalars())


def list_crews(session: Session) -> list[Crew]:
    return list(session.execute(select(Crew).order_by(Crew.id)).scalars())


def list_districts(session: Session) -> list[District]:
    return list(session.execute(select(District).order_by(District.id)).scalars())


Unit = tuple[str | None, str | None]
"""A crew's or district's code and name, as every planner report keys its rows."""


@dataclass(frozen=True)
class UnitNames:
    """Code and name of every crew and district; ``(None, None)`` for none (empty cells)."""

    crews: Mapping[int, tuple[str, str]]
    districts: Mapping[int, tuple[str, str]]

    def crew(self, crew_id: int | None) -> Unit:
        return self.crews.get(crew_id, (None, None)) if crew_id is not None else (None, None)

    def district(self, district_id: int | None) -> Unit:
        if district_id is None:
            return (None, None)
        return self.districts.get(district_id, (None, None))


def unit_names(session: Session) -> UnitNames:
    """Every crew's and district's code and name, read once for an export."""
    return UnitNames(
        crews={c.id: (c.code, c.name) for c in list_crews(session)},
        districts={d.id: (d.code, d.name) for d in list_districts(session)},
    )
