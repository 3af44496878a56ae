"""Paging of list endpoints that answer a bare JSON list.

The body stays a list (old clients keep working); ``limit`` and ``offset`` query parameters pick
the page, ``X-Total-Count`` answers how many match and ``Link: <...>; rel="next"`` (RFC 8288, as
GitHub's API does) names the next page, absent on the last one.

An endpoint takes ``page: Page`` and hands it to its service, which returns
``page.select(session, query)`` (counted and cut in the database); or the endpoint returns
``page.apply(rows)`` (a list already built in memory, cut here). :func:`install`
documents the parameters' headers in the OpenAPI of every route that takes :data:`Page`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, TypeVarTuple

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from field_api.types import OffsetQuery

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
TOTAL_HEADER = "X-Total-Count"
LINK_HEADER = "Link"
PAGE_HEADERS: dict[str, dict[str, Any]] = {
    TOTAL_HEADER: {
        "description": "How many items match in all pages.",
        "schema": {"type": "integer", "minimum": 0},
    },
    LINK_HEADER: {
        "description": 'RFC 8288 links: `<url>; rel="next"` names the next page (absent on the '
        'last one), `rel="prev"` the previous one.',
        "schema": {"type": "string"},
    },
}


def next_offset(offset: int, shown: int, total: int) -> int | None:
    """Where the page after ``shown`` items from ``offset`` starts; None on the last page
    (the ``next_offset`` of the queues that page in their body)."""
    following = offset + shown
    return following if shown > 0 and following < total else None


def _links(request: Request, *, limit: int, offset: int, shown: int, total: int) -> str | None:
    links: list[str] = []
    following = next_offset(offset, shown, total)
    if following is not None:
        url = request.url.include_query_params(limit=limit, offset=following)
        links.append(f'<{url}>; rel="next"')
    if offset > 0:
        url = request.url.include_query_params(limit=limit, offset=max(offset - limit, 0))
        links.append(f'<{url}>; rel="prev"')
    return ", ".join(links) or None


@dataclass(frozen=True)
class PageParams:
    """The page asked for, and where its headers go."""

    limit: int
    offset: int
    request: Request
    response: Response

    def set_headers(self, *, shown: int, total: int) -> None:
        """Answer ``total`` and the links of a page of ``shown`` items."""
        self.response.headers[TOTAL_HEADER] = str(total)
        link = _links(
            self.request, limit=self.limit, offset=self.offset, shown=shown, total=total
        )
        if link is not None:
            self.response.headers[LINK_HEADER] = link

    def apply(self, rows: Sequence[T]) -> list[T]:
        """The page of ``rows`` (a whole list built in memory), headers set."""
        page = list(rows[self.offset : self.offset + self.limit])
        self.set_headers(shown=len(page), total=len(rows))
        return page

    def _total(self, session: Session, query: Select[*Ts]) -> int:
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        return int(session.execute(counted).scalar_one())

    def select(self, session: Session, query: Select[T]) -> list[T]:
        """The page of ``query`` (in a total order), counted and cut in the database."""
        total = self._total(session, query)
        rows = list(session.execute(query.limit(self.limit).offset(self.offset)).scalars())
        self.set_headers(shown=len(rows), total=total)
        return rows

    def rows(self, session: Session, query: Select[*Ts]) -> list[Row[*Ts]]:
        """As :meth:`select`, for a query of several columns or entities (rows of tuples)."""
        total = self._total(session, query)
        rows = list(session.execute(query.limit(self.limit).offset(self.offset)).all())
        self.set_headers(shown=len(rows), total=total)
        return rows


def page_params(
    request: Request,
    response: Response,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT}).")
    ] = DEFAULT_LIMIT,
    offset: OffsetQuery = 0,
) -> PageParams:
    """The ``limit``/``offset`` query parameters of a paged list."""
    return PageParams(limit=limit, offset=offset, request=request, response=response)


Page = Annotated[PageParams, Depends(page_params)]


def _is_paged(dependant: Dependant) -> bool:
    return any(d.call is page_params or _is_paged(d) for d in dependant.dependencies)


def install(app: FastAPI) -> None:
    """Document ``X-Total-Count`` and ``Link`` on the 200 answer of every paged route."""
    base: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        schema = base()
        paths = schema.get("paths", {})
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            if not (isinstance(route, APIRoute) and _is_paged(route.dependant)):
                continue
            for method in context.methods or ():
                operation = paths.get(context.path_format, {}).get(method.lower())
                ok = (operation or {}).get("responses", {}).get("200")
                if ok is not None:
                    ok.setdefault("headers", {}).update(PAGE_HEADERS)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
