"""HTTP endpoints of supply schemes."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from field_api.deps import CurrentUser, DbSession
from field_api.language import language_of
from field_api.paging import Page
from field_api.schemes import service
from field_api.schemes.schemas import SchemeCreate, SchemeRead
from field_api.types import IdPath

router = APIRouter(tags=["supply schemes"])


@router.post("/work-orders/{order_id}/schemes", status_code=status.HTTP_201_CREATED)
def request_scheme(
    request: Request, order_id: IdPath, body: SchemeCreate, session: DbSession, user: CurrentUser
) -> SchemeRead:
    """Compute the order's supply scheme; a passing one is saved as its scheme.

    Failures, the white-list proposal and proposals carry ``message`` in the request's language
    (``detail`` stays English)."""
    return SchemeRead.of(
        service.request_scheme(session, order_id, body, actor=user), language_of(request)
    )


@router.get("/work-orders/{order_id}/schemes")
def list_schemes(
    page: Page,
    request: Request, order_id: IdPath, session: DbSession, user: CurrentUser
) -> list[SchemeRead]:
    """Every scheme computed for the order, oldest first."""
    language = language_of(request)
    return page.apply([
        SchemeRead.of(s, language) for s in service.list_for_order(session, order_id, actor=user)
    ])


@router.get("/work-orders/{order_id}/scheme")
def accepted_scheme(
    request: Request, order_id: IdPath, session: DbSession, user: CurrentUser
) -> SchemeRead:
    """The order's accepted scheme (409 when none was accepted)."""
    return SchemeRead.of(
        service.accepted_for_actor(session, order_id, actor=user), language_of(request)
    )


@router.get("/schemes/{scheme_id}")
def get_scheme(
    request: Request, scheme_id: IdPath, session: DbSession, user: CurrentUser
) -> SchemeRead:
    """One saved scheme with every computed figure."""
    return SchemeRead.of(service.get_or_raise(session, scheme_id, actor=user), language_of(request))
