"""The attention list as CSV rows: one row per order clock, its crew and district by code and
name; stage, time limit and status by their names in the reader's language."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any, Final

from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.common import i18n
from field_api.common.actors import Principal
from field_api.common.calendar import WorkingCalendar
from field_api.deadlines import service
from field_api.language import Lang

ATTENTION_COLUMNS: Final = (
    "order_id",
    "crew_code",
    "crew_name",
    "district_code",
    "district_name",
    "stage",
    "clock",
    "governing",
    "due_on",
    "status",
    "provisional",
    "paused",
)


def attention_rows(
    session: Session,
    user: Principal,
    language: Lang,
    *,
    as_of: date,
    crew_id: int | None,
    district_id: int | None,
    calendar: WorkingCalendar,
) -> list[dict[str, Any]]:
    """The rows of :func:`service.attention` for ``user``, soonest first."""
    items = service.attention(
        session,
        user,
        as_of=as_of,
        crew_id=crew_id,
        district_id=district_id,
        calendar=calendar,
    )
    units = auth_service.unit_names(session)
    rows = []
    for item in items:
        crew = units.crew(item.crew_id)
        district = units.district(item.district_id)
        rows.append(
            asdict(item)
            | {
                "crew_code": crew[0],
                "crew_name": crew[1],
                "district_code": district[0],
                "district_name": district[1],
                "stage": i18n.name("stage", item.stage.value, language),
                "clock": i18n.name("clock", item.clock, language),
                "status": i18n.name("orders", item.status.value, language),
            }
        )
    return rows
