"""Demo data: a district, crews, one user per role with fixed development tokens, a dozen orders.

Loading twice duplicates nothing: every item is looked up by its natural key first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.auth.models import Role, User
from field_api.auth.rules import DEMO_TOKENS
from field_api.config import Settings
from field_api.errors import ValidationFailed
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import FLOW, Area, Category, Channel, Stage
from field_api.work_orders.schemas import WorkOrderCreate

DISTRICT = ("SZ-NS", "深圳南山区", 200.0)
CREWS = (
    ("CREW-A", "南山一班", False),
    ("CREW-B", "南山二班", False),
    ("REPAIR-1", "南山抢修班", True),
)
USERS: tuple[tuple[str, str, Role, str | None], ...] = (
    ("admin", "系统管理员", Role.admin, None),
    ("crew", "李工", Role.crew, "CREW-A"),
    ("crew_b", "王工", Role.crew, "CREW-B"),
    ("repair_crew", "赵工", Role.crew, "REPAIR-1"),
    ("inspector", "陈巡检", Role.inspector, None),
    ("planner", "刘计划", Role.planner, None),
    ("service", "周客服", Role.service, None),
    ("storekeeper", "吴库管", Role.storekeeper, None),
)
# (id number key, name, category, kW, phases, crew, target stage)
ORDERS: tuple[tuple[str, str, Category, int, int, str | None, Stage], ...] = (
    ("DEMO000001", "张伟", Category.residential, 8, 1, "CREW-A", Stage.accepted),
    ("DEMO000002", "王芳", Category.residential, 10, 1, "CREW-A", Stage.surveyed),
    ("DEMO000003", "李娜", Category.residential, 8, 1, "CREW-A", Stage.scheme_answered),
    ("DEMO000004", "刘洋", Category.small_micro_enterprise, 50, 3, "CREW-A", Stage.contract_signed),
    ("DEMO000005", "陈静", Category.small_micro_enterprise, 100, 3, "CREW-B", Stage.installed),
    ("DEMO000006", "杨磊", Category.residential, 12, 1, "CREW-B", Stage.inspected),
    ("DEMO000007", "黄敏", Category.small_micro_enterprise, 20, 3, "CREW-B", Stage.energised),
    ("DEMO000008", "赵强", Category.residential, 8, 1, "CREW-A", Stage.called_back),
    ("DEMO000009", "周杰", Category.residential, 8, 1, "CREW-B", Stage.closed),
    ("DEMO000010", "吴霞", Category.small_micro_enterprise, 160, 3, "CREW-A", Stage.whitelisted),
    ("DEMO000011", "徐明", Category.other_low_voltage, 30, 3, "CREW-B", Stage.cancelled),
    ("DEMO000012", "孙丽", Category.residential, 8, 1, None, Stage.accepted),
)
BASE_LON, BASE_LAT = 113.9305, 22.5333


@dataclass(frozen=True)
class DemoSummary:
    tokens: dict[str, str]
    orders_created: int


def load(session: Session, *, settings: Settings, today: date | None = None) -> DemoSummary:
    """Create the demo data that is missing (never in production)."""
    if settings.is_production:
        raise ValidationFailed(
            "demo data and demo tokens are refused in production",
            code="demo.refused_in_production",
        )
    today = today or date.today()
    code, name, ceiling = DISTRICT
    if auth_service.get_district_by_code(session, code) is None:
        auth_service.create_district(
            session, code=code, name=name, lv_ceiling_kw=ceiling, actor=None
        )
    for crew_code, crew_name, repairs in CREWS:
        if auth_service.get_crew_by_code(session, crew_code) is None:
            auth_service.create_crew(
                session,
                code=crew_code,
                name=crew_name,
                district_code=code,
                handles_repairs=repairs,
                actor=None,
            )
    for key, user_name, role, user_crew in USERS:
        exists = session.execute(select(User).where(User.name == user_name)).scalar_one_or_none()
        if exists is None:
            auth_service.create_user(
                session,
                name=user_name,
                role=role,
                crew_code=user_crew,
                settings=settings,
                actor=None,
                token=DEMO_TOKENS[key],
            )
    _load_network_and_depot(session, settings=settings)
    created = 0
    for i, (id_number, customer, category, kw, phases, crew, target) in enumerate(ORDERS):
        found = session.execute(
            select(WorkOrder).where(WorkOrder.customer_id_number == id_number)
        ).scalar_one_or_none()
        if found is not None:
            continue
        order = orders.create(
            session,
            WorkOrderCreate(
                customer_name=customer,
                customer_phone=f"1380013{i:04d}",
                customer_id_number=id_number,
                category=category,
                capacity_kw=kw,
                phases=phases,
                address=f"深圳市南山区科技园{i + 1}号",
                lon=BASE_LON + 0.002 * i,
                lat=BASE_LAT + 0.001 * i,
                district_code=code,
                crew_code=crew,
                area=Area.urban,
                channel=Channel.app,
                applied_on=today - timedelta(days=len(ORDERS) - i),
            ),
            actor=None,
        )
        _advance(session, order, target)
        created += 1
    return DemoSummary(tokens=dict(DEMO_TOKENS), orders_created=created)


def _advance(session: Session, order: WorkOrder, target: Stage) -> None:
    if target == Stage.whitelisted:
        orders.transition(
            session,
            order,
            Stage.whitelisted,
            actor=None,
            reason="台区变压器容量不足，需电网改造",
            expected_on=date.today() + timedelta(days=60),
        )
        return
    if target == Stage.cancelled:
        orders.transition(session, order, Stage.cancelled, actor=None, reason="客户撤回申请")
        return
    for stage in FLOW[1 : FLOW.index(target) + 1]:
        orders.transition(session, order, stage, actor=None)


DEPOT = ("SZ-NS-DEPOT", "南山标准物料库")
# Two distribution transformers near the demo orders (code, name, rated kVA, load kVA, lon, lat).
TRANSFORMERS = (
    ("TX-DEMO-01", "科技园1号配变", 400, 250, BASE_LON + 0.0008, BASE_LAT + 0.0002),
    ("TX-DEMO-02", "科技园2号配变", 630, 200, BASE_LON + 0.0150, BASE_LAT + 0.0080),
)


def _load_network_and_depot(session: Session, *, settings: Settings) -> None:
    """Transformers near the demo orders and a depot stocked with every kit's materials."""
    from field_api.auth.rules import Principal
    from field_api.kits import service as kits
    from field_api.network import service as network
    from standard_kits import load_catalogue

    admin = session.execute(select(User).where(User.role == Role.admin)).scalars().first()
    if admin is None:
        return
    actor = Principal(user_id=admin.id, name=admin.name, role=Role.admin)
    if network.get_by_code(session, TRANSFORMERS[0][0]) is None:
        rows = ["code,name,rated_kva,load_kva,lon,lat"] + [
            f"{c},{n},{kva},{load},{lon:.6f},{lat:.6f}"
            for c, n, kva, load, lon, lat in TRANSFORMERS
        ]
        network.import_file(
            session, "\n".join(rows).encode(), filename="demo-transformers.csv", actor=actor
        )
    if kits.get_depot_by_code(session, DEPOT[0]) is None:
        kits.create_depot(
            session, code=DEPOT[0], name=DEPOT[1], district_code=DISTRICT[0], actor=actor
        )
        catalogue = load_catalogue()
        wanted: dict[str, float] = {}
        for kit in catalogue.connection_kits:
            for item in kit.items:
                wanted[item.material] = 40
            for per_metre in kit.per_metre:
                wanted[per_metre.material] = 3000
        kits.receive(session, DEPOT[0], wanted, actor=actor)
