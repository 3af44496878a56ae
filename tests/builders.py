"""Typed builders of test data (``make_*``)."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.auth.models import Crew, District, User
from field_api.common.actors import Role
from field_api.config import Settings
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Area, Category, Channel, Stage
from field_api.work_orders.schemas import WorkOrderCreate


def _code(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def make_district(
    session: Session, *, code: str | None = None, lv_ceiling_kw: float = 160.0
) -> District:
    return auth_service.create_district(
        session, code=code or _code("D"), name="测试区", lv_ceiling_kw=lv_ceiling_kw, actor=None
    )


def make_crew(
    session: Session,
    *,
    district: District | None = None,
    code: str | None = None,
    handles_repairs: bool = False,
) -> Crew:
    district = district or make_district(session)
    return auth_service.create_crew(
        session,
        code=code or _code("C"),
        name="测试班组",
        district_code=district.code,
        handles_repairs=handles_repairs,
        actor=None,
    )


def make_user(
    session: Session,
    settings: Settings,
    *,
    role: Role = Role.crew,
    crew: Crew | None = None,
    name: str | None = None,
) -> tuple[User, str]:
    if role == Role.crew and crew is None:
        crew = make_crew(session)
    return auth_service.create_user(
        session,
        name=name or _code("user"),
        role=role,
        crew_code=crew.code if crew is not None else None,
        settings=settings,
        actor=None,
    )


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def order_payload(district: District, crew: Crew | None = None, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "customer_name": "张三",
        "customer_phone": "13800138000",
        "customer_id_number": "440301199001011234",
        "category": Category.residential.value,
        "capacity_kw": 8.0,
        "phases": 1,
        "address": "深圳市南山区科技园1号",
        "lon": 113.9305,
        "lat": 22.5333,
        "district_code": district.code,
        "crew_code": crew.code if crew else None,
        "area": Area.urban.value,
        "channel": Channel.app.value,
        "applied_on": date(2025, 9, 29).isoformat(),
    }
    payload.update(overrides)
    return payload


def make_order(
    session: Session,
    *,
    district: District | None = None,
    crew: Crew | None = None,
    stage: Stage = Stage.accepted,
    **overrides: Any,
) -> WorkOrder:
    if district is None:
        district = session.get(District, crew.district_id) if crew else make_district(session)
    assert district is not None
    order = orders.create(
        session, WorkOrderCreate(**order_payload(district, crew, **overrides)), actor=None
    )
    from field_api.work_orders.rules import FLOW

    if stage in FLOW:
        for s in FLOW[1 : FLOW.index(stage) + 1]:
            orders.transition(session, order, s, actor=None)
    return order
