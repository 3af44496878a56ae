"""Annotated dependency aliases shared by the endpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from field_api.audit import service as audit_service
from field_api.auth import service as auth_service
from field_api.common.actors import Principal, Role
from field_api.config import SETTINGS_KEY, Settings
from field_api.db import session_scope
from field_api.errors import Forbidden, Unauthorized


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WRITES_MARK = "__fieldops_writes_database__"
EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])


def writes_database(endpoint: EndpointT) -> EndpointT:
    """Mark a GET endpoint that writes (e.g. creates a row on first use): it gets a write session.

    A read session on SQLite is a DEFERRED transaction; upgrading it to a write fails at once
    (busy, a 503) whenever another writer is active, so such endpoints must say so.
    """
    setattr(endpoint, _WRITES_MARK, True)
    return endpoint


def request_writes(request: Request) -> bool:
    """Whether this request's session must be a write session."""
    endpoint = request.scope.get("endpoint")
    return request.method not in READ_METHODS or bool(getattr(endpoint, _WRITES_MARK, False))


def get_db(request: Request) -> Iterator[Session]:
    """One session per request; it commits when the endpoint returns, rolls back on error.

    GET/HEAD/OPTIONS get a read session (DEFERRED on SQLite: it never waits for a writer)
    unless the endpoint is marked :func:`writes_database`; other methods a write session
    (``BEGIN IMMEDIATE`` on SQLite: writers are serialised).
    """
    factory: sessionmaker[Session] = request.app.state.session_factory
    info = {SETTINGS_KEY: request.app.state.settings}
    yield from session_scope(factory, write=request_writes(request), info=info)


AppSettings = Annotated[Settings, Depends(get_app_settings)]
DbSession = Annotated[Session, Depends(get_db, scope="function")]


def get_current_user(request: Request, session: DbSession, settings: AppSettings) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "missing bearer token",
            code="auth.missing_token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        principal = auth_service.authenticate(session, token=token.strip(), settings=settings)
    except Unauthorized as exc:
        exc.headers = {"WWW-Authenticate": "Bearer"}
        raise
    audit_service.set_actor(session, principal)  # authors the events of this request's writes
    return principal


CurrentUser = Annotated[Principal, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits only the given roles (403 otherwise)."""
    allowed = frozenset(roles)

    def _check(user: CurrentUser) -> Principal:
        if user.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(
                f"role {user.role.value} may not do this (needs one of: {names})",
                code="auth.role_forbidden",
                params={"role": user.role.value, "allowed": sorted(r.value for r in allowed)},
            )
        return user

    return _check
