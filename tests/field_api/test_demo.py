"""Demo data: a populated system, loaded twice without duplicates, refused in production."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api import demo
from field_api.auth.models import User
from field_api.config import Settings
from field_api.errors import ValidationFailed
from field_api.work_orders.models import WorkOrder


def test_demo_load_twice_duplicates_nothing(session: Session, settings: Settings) -> None:
    first = demo.load(session, settings=settings)
    second = demo.load(session, settings=settings)
    assert first.orders_created == 12 and second.orders_created == 0
    assert session.scalar(select(func.count()).select_from(WorkOrder)) == 12
    assert session.scalar(select(func.count()).select_from(User)) == len(demo.USERS)
    from field_api.kits import service as kits
    from field_api.network import service as network

    assert network.get_by_code(session, "TX-DEMO-01") is not None
    depot = kits.get_depot_by_code(session, demo.DEPOT[0])
    assert depot is not None and len(kits.stock_of(session, depot)) > 10
    stages = {o.stage.value for o in session.scalars(select(WorkOrder))}
    assert {"accepted", "energised", "closed", "whitelisted", "cancelled"} <= stages


def test_demo_refused_in_production(session: Session) -> None:
    prod = Settings(
        env="production", token_pepper="p" * 32, database_url="postgresql+psycopg://x@127.0.0.1/x"
    )
    with pytest.raises(ValidationFailed):
        demo.load(session, settings=prod)
