"""Shared set-up of the kits tests: a network, a crew, orders with accepted schemes, a depot."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.auth.models import Crew
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.kits import service
from field_api.network import service as network
from field_api.schemes import service as schemes
from field_api.schemes.models import SupplyScheme
from field_api.schemes.schemas import SchemeCreate
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.builders import make_crew, make_order, make_user

FIXTURES = Path(__file__).parents[2] / "fixtures" / "network"


def principal(session: Session, settings: Settings, role: Role, crew: Crew | None = None) -> Principal:
    _, token = make_user(session, settings, role=role, crew=crew)
    return auth_service.authenticate(session, token=token, settings=settings)


def load_network(session: Session) -> None:
    network.import_file(
        session, (FIXTURES / "network.geojson").read_bytes(), filename="network.geojson",
        actor=None,
    )


def order_with_scheme(
    session: Session, crew: Crew, crew_member: Principal
) -> tuple[WorkOrder, SupplyScheme]:
    """An 8 kW residential order surveyed and answered with kit R1 on TX-NANSHAN-01."""
    order = make_order(session, crew=crew, stage=Stage.surveyed)
    scheme = schemes.request_scheme(session, order.id, SchemeCreate(), actor=crew_member)
    assert scheme.status == "accepted"
    return order, scheme


def stock_for(scheme: SupplyScheme, *, times: int = 1) -> dict[str, float]:
    """Enough of every material of the scheme's kit for ``times`` kits."""
    return {b["material_code"]: b["quantity"] * times for b in scheme.bill_of_materials}


def setup(session: Session, settings: Settings) -> tuple[Crew, Principal, Principal]:
    """Network, a crew with a member, and a storekeeper."""
    load_network(session)
    crew = make_crew(session)
    member = principal(session, settings, Role.crew, crew)
    keeper = principal(session, settings, Role.storekeeper)
    return crew, member, keeper


def depot_with(
    session: Session, keeper: Principal, lines: dict[str, float], code: str = "DEPOT-NS"
) -> None:
    service.create_depot(session, code=code, name="南山仓库", district_code=None, actor=keeper)
    service.receive(session, code, lines, actor=keeper)
