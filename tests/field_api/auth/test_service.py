"""The last active admin can be neither revoked, deactivated nor demoted (nobody could sign in)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.auth import service
from field_api.auth.models import ApiToken, User
from field_api.common.actors import Role
from field_api.config import Settings
from field_api.errors import Conflict
from tests.builders import auth, make_user


def _token_id(session: Session, raw: str) -> int:
    return session.execute(select(ApiToken.id).where(ApiToken.prefix == raw[:12])).scalar_one()


def _only_admins(session: Session, *keep: User) -> None:
    """Deactivate every other admin the database may hold (demo data of earlier tests)."""
    for user in session.execute(select(User).where(User.role == Role.admin)).scalars():
        if user not in keep:
            user.active = False
    session.flush()


def test_the_last_admin_token_cannot_be_revoked(
    client: TestClient, session: Session, settings: Settings
) -> None:
    admin, raw = make_user(session, settings, role=Role.admin)
    _only_admins(session, admin)
    session.commit()
    r = client.post(f"/admin/tokens/{_token_id(session, raw)}/revoke", headers=auth(raw))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "auth.last_admin"
    assert "没有可登录的管理员" in r.json()["detail"]
    assert client.get("/me", headers=auth(raw)).status_code == 200

    # with a second admin token (its own or another admin's) the revoke goes through
    second = service.issue_token(session, user=admin, settings=settings, actor=None)
    session.commit()
    r = client.post(f"/admin/tokens/{_token_id(session, raw)}/revoke", headers=auth(second))
    assert r.status_code == 200, r.text
    assert client.get("/me", headers=auth(raw)).status_code == 401


def test_the_last_admin_cannot_be_deactivated_or_demoted(
    session: Session, settings: Settings
) -> None:
    admin, raw = make_user(session, settings, role=Role.admin)
    _only_admins(session, admin)
    actor = service.authenticate(session, token=raw, settings=settings)
    with pytest.raises(Conflict, match=r"deactivating user \d+ would leave no active admin"):
        service.deactivate_user(session, user_id=admin.id, actor=actor)
    with pytest.raises(Conflict, match=r"demoting user \d+ would leave no active admin"):
        service.change_role(session, user_id=admin.id, role=Role.planner, actor=actor)
    assert admin.active and admin.role == Role.admin

    other, _ = make_user(session, settings, role=Role.admin)
    service.change_role(session, user_id=admin.id, role=Role.planner, actor=actor)
    assert admin.role == Role.planner
    with pytest.raises(Conflict, match="would leave no active admin"):
        service.deactivate_user(session, user_id=other.id, actor=actor)
    planner, _ = make_user(session, settings, role=Role.planner)
    service.deactivate_user(session, user_id=planner.id, actor=actor)  # not an admin: fine
    assert not planner.active


def test_an_admin_without_a_valid_token_does_not_count(
    session: Session, settings: Settings
) -> None:
    admin, raw = make_user(session, settings, role=Role.admin)
    locked_out, locked_raw = make_user(session, settings, role=Role.admin)
    _only_admins(session, admin, locked_out)
    service.revoke_token(
        session, token_id=_token_id(session, locked_raw),
        actor=service.authenticate(session, token=raw, settings=settings),
    )
    actor = service.authenticate(session, token=raw, settings=settings)
    with pytest.raises(Conflict):
        service.revoke_token(session, token_id=_token_id(session, raw), actor=actor)
