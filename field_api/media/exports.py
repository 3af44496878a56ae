"""The evidence flags as CSV rows: each order's crew and district by code and name, the flag's
message, the evidence kind and the stage in the reader's language."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.common import i18n
from field_api.common.actors import Principal
from field_api.language import Lang
from field_api.media import service
from field_api.media.rules import FlagCode
from field_api.media.schemas import FlagRead

FLAG_COLUMNS: Final = (
    "order_id",
    "crew_code",
    "crew_name",
    "district_code",
    "district_name",
    "media_id",
    "media_kind",
    "stage",
    "flag_code",
    "message",
    "flagged_at",
)


def flag_rows(
    session: Session,
    user: Principal,
    language: Lang,
    *,
    code: FlagCode | None,
    order_id: int | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """The rows of the flags ``user`` may read (:func:`service.flags_with_orders`), newest first."""
    rows = service.flags_with_orders(
        session, user, code=code, order_id=order_id, limit=limit, offset=offset
    )
    units = auth_service.unit_names(session)
    lines: list[dict[str, Any]] = []
    for flag, item, order in rows:
        crew = units.crew(order.crew_id)
        district = units.district(order.district_id)
        lines.append(
            {
                "order_id": flag.order_id,
                "crew_code": crew[0],
                "crew_name": crew[1],
                "district_code": district[0],
                "district_name": district[1],
                "media_id": item.id,
                "media_kind": i18n.name("photo", item.kind.value, language),
                "stage": i18n.name("stage", item.stage.value, language),
                "flag_code": flag.code,
                "message": FlagRead.of(flag, language).message,
                "flagged_at": flag.created_at,
            }
        )
    return lines
