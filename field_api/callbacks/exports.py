"""The review flags as CSV rows: each order's crew and district by code and name, the reasons and
the stage in the reader's language (the endpoint adds the header and the file name)."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.callbacks import service
from field_api.callbacks.rules import FlagKind
from field_api.callbacks.schemas import FlagRead
from field_api.common import i18n
from field_api.common.actors import Principal
from field_api.language import Lang

FLAG_COLUMNS: Final = (
    "order_id",
    "crew_code",
    "crew_name",
    "district_code",
    "district_name",
    "stage",
    "flag_code",
    "message",
    "detected_at",
    "resolved_at",
    "resolution",
)


def review_flag_rows(
    session: Session,
    user: Principal,
    language: Lang,
    *,
    district_id: int | None,
    kind: FlagKind | None,
    include_resolved: bool,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """The rows of the flags ``user`` may read (:func:`service.list_flags`), newest first."""
    rows = service.list_flags(
        session,
        user,
        district_id=district_id,
        kind=kind,
        include_resolved=include_resolved,
        limit=limit,
        offset=offset,
    )
    units = auth_service.unit_names(session)
    lines: list[dict[str, Any]] = []
    for flag, order in rows:
        read = FlagRead.of(flag, order, language)
        crew = units.crew(order.crew_id)
        district = units.district(order.district_id)
        lines.append(
            {
                "order_id": order.id,
                "crew_code": crew[0],
                "crew_name": crew[1],
                "district_code": district[0],
                "district_name": district[1],
                "stage": i18n.name("stage", order.stage.value, language),
                "flag_code": read.kind,
                "message": read.message,
                "detected_at": read.detected_at,
                "resolved_at": read.resolved_at,
                "resolution": read.resolution,
            }
        )
    return lines
