"""Demo data a planner can believe, made through the services the API uses.

``load`` creates (once) two districts, three connection crews and the repair crew, one user per
role with the fixed development tokens, transformers and a stocked depot per district, then:

- twelve *showcase* orders (ids 1-12 in a fresh database), each left at one stage of the flow
  (accepted, surveyed, scheme_answered with its scheme, contract_signed, installed, inspected,
  energised, called_back, closed, whitelisted, cancelled, unassigned) with the visits, photos,
  scheme, signed contract, kit and checks that stage implies, so every one of them can be
  continued through the API;
- with ``months`` > 0, a history of about that many months ending before today: orders
  recorded by the service desk, visited by their crew (most connected in one visit, some in
  two), checks failing first and reworked, deadlines met and missed, call-backs, closures,
  white-listed and cancelled orders and a few orders the off-system detectors flag; and the
  reliability register (feeder sections, customers, monthly snapshots) with the months' outages
  (:mod:`field_api.demo.reliability`).

Every step runs at the time a :class:`~field_api.common.clock.ManualClock` shows (installed for the
load, the previous clock restored after), so stored times are consistent. All choices come from
a seeded generator: loading into two fresh databases gives the same business rows. Loading
again adds nothing (the demo district's showcase order ``DEMO000001`` marks a loaded demo).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.auth.models import User
from field_api.auth.rules import DEMO_TOKENS
from field_api.callbacks.rules import Irregularity
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.calendar import WorkingCalendar, calendar_for
from field_api.config import Settings
from field_api.demo import reliability, stories
from field_api.demo.stories import (
    Plan,
    at_china,
    demo_meter,
    working_day_after,
    working_day_before,
)
from field_api.demo.world import OrderSpec, World, cast_of
from field_api.errors import ValidationFailed
from field_api.kits import service as kits
from field_api.meters import configured_check_digit_rule
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Category, Channel, Stage

SEED = 20261204
DEFAULT_MONTHS = 6

DISTRICT = ("SZ-NS", "深圳南山区", 200.0)
DISTRICTS = (DISTRICT, ("SZ-FT", "深圳福田区", 200.0))
CREWS = (
    ("CREW-A", "南山一班", False),
    ("CREW-B", "南山二班", False),
    ("REPAIR-1", "南山抢修班", True),
)
# (code, name, district) of the connection crew of the second district
CREW_C = ("CREW-C", "福田一班", "SZ-FT")
USERS: tuple[tuple[str, str, Role, str | None], ...] = (
    ("admin", "系统管理员", Role.admin, None),
    ("crew", "李工", Role.crew, "CREW-A"),
    ("crew_b", "王工", Role.crew, "CREW-B"),
    ("repair_crew", "赵工", Role.crew, "REPAIR-1"),
    ("inspector", "陈巡检", Role.inspector, None),
    ("planner", "刘计划", Role.planner, None),
    ("service", "周客服", Role.service, None),
    ("storekeeper", "吴库管", Role.storekeeper, None),
    ("dispatcher", "郑调度", Role.dispatcher, None),
)
# The third crew's member (fixed development token ``crew_c`` of auth.rules.DEMO_TOKENS).
CREW_C_USER = ("crew_c", "孙工", "CREW-C")
CREW_MEMBERS = {"CREW-A": "李工", "CREW-B": "王工", "CREW-C": "孙工"}

BASE_LON, BASE_LAT = 113.9305, 22.5333
FT_LON, FT_LAT = 114.0550, 22.5410
# Distribution transformers (code, name, rated kVA, load kVA, lon, lat): the first two beside
# the showcase customers (tests use the first), the others where the history's customers live.
TRANSFORMERS = (
    ("TX-DEMO-01", "科技园1号配变", 400, 250, BASE_LON + 0.0008, BASE_LAT + 0.0002),
    ("TX-DEMO-02", "科技园2号配变", 630, 200, BASE_LON + 0.0150, BASE_LAT + 0.0080),
    ("TX-DEMO-03", "科技园3号配变", 800, 240, BASE_LON + 0.0060, BASE_LAT + 0.0010),
    ("TX-DEMO-04", "南头4号配变", 1000, 300, BASE_LON - 0.0120, BASE_LAT + 0.0060),
    ("TX-DEMO-05", "蛇口5号配变", 1000, 260, BASE_LON - 0.0050, BASE_LAT - 0.0150),
    ("TX-FT-01", "福田1号配变", 1000, 300, FT_LON, FT_LAT),
    ("TX-FT-02", "福田2号配变", 1000, 280, FT_LON + 0.0110, FT_LAT - 0.0040),
    ("TX-FT-03", "福田3号配变", 800, 200, FT_LON - 0.0090, FT_LAT + 0.0070),
)
SITES = {
    "SZ-NS": list(TRANSFORMERS[2:5]),
    "SZ-FT": list(TRANSFORMERS[5:]),
}
DEPOT = ("SZ-NS-DEPOT", "南山标准物料库")
DEPOTS = {"SZ-NS": DEPOT, "SZ-FT": ("SZ-FT-DEPOT", "福田标准物料库")}
DEPOT_OF = tuple(code for code, _ in DEPOTS.values())
DEPOT_OF_CREW = {"CREW-A": "SZ-NS-DEPOT", "CREW-B": "SZ-NS-DEPOT", "CREW-C": "SZ-FT-DEPOT"}

# The showcase: (id number key, name, category, kW, phases, crew, target stage)
ORDERS: tuple[tuple[str, str, Category, int, int, str | None, Stage], ...] = (
    ("DEMO000001", "张伟", Category.residential, 8, 1, "CREW-A", Stage.accepted),
    ("DEMO000002", "王芳", Category.residential, 10, 1, "CREW-A", Stage.surveyed),
    ("DEMO000003", "李娜", Category.residential, 8, 1, "CREW-A", Stage.scheme_answered),
    ("DEMO000004", "刘洋", Category.small_micro_enterprise, 50, 3, "CREW-A", Stage.contract_signed),
    ("DEMO000005", "陈静", Category.small_micro_enterprise, 100, 3, "CREW-B", Stage.installed),
    ("DEMO000006", "杨磊", Category.residential, 10, 1, "CREW-B", Stage.inspected),
    ("DEMO000007", "黄敏", Category.small_micro_enterprise, 20, 3, "CREW-B", Stage.energised),
    ("DEMO000008", "赵强", Category.residential, 8, 1, "CREW-A", Stage.called_back),
    ("DEMO000009", "周杰", Category.residential, 8, 1, "CREW-B", Stage.closed),
    ("DEMO000010", "吴霞", Category.small_micro_enterprise, 160, 3, "CREW-A", Stage.whitelisted),
    ("DEMO000011", "徐明", Category.other_low_voltage, 30, 3, "CREW-B", Stage.cancelled),
    ("DEMO000012", "孙丽", Category.residential, 8, 1, None, Stage.accepted),
)
# Working days before today on which each showcase order was recorded (its visit follows).
SHOWCASE_AGE = {1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 6, 8: 12, 9: 20, 10: 9, 11: 7, 12: 1}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红鹏辉建国文斌宁波琳雪梅晨"
STREETS = {
    "SZ-NS": ["科技园路", "南海大道", "学府路", "桃园路", "前海路", "蛇口工业路"],
    "SZ-FT": ["深南大道", "福华路", "益田路", "彩田路", "莲花路", "新洲路"],
}


@dataclass(frozen=True)
class DemoSummary:
    tokens: dict[str, str]
    orders_created: int


def load(session: Session, *, settings: Settings, months: int = 0) -> DemoSummary:
    """Create the demo data unless it is there (never in production).

    ``months``: how many months of history to add before the showcase's days (0: none, which
    keeps a test database quick; ``fieldops demo load`` makes :data:`DEFAULT_MONTHS`).
    """
    if settings.is_production:
        raise ValidationFailed(
            "demo data and demo tokens are refused in production",
            code="demo.refused_in_production",
        )
    _load_people(session, settings=settings)
    _load_network_and_depots(session, settings=settings)
    marker = session.execute(
        select(WorkOrder.id).where(WorkOrder.customer_id_number == ORDERS[0][0])
    ).scalar_one_or_none()
    if marker is not None:
        return DemoSummary(tokens=dict(DEMO_TOKENS), orders_created=0)
    created: list[WorkOrder] = []
    now = clock.now()
    manual = clock.ManualClock(now)
    with clock.use_clock(manual):
        world = World(session, settings, manual, cast_of(session, CREW_MEMBERS))
        calendar = calendar_for(settings)
        rule = configured_check_digit_rule(settings)
        _showcase(world, calendar, now, rule, created.append)
        if months > 0:
            _history(world, calendar, now, rule, created.append, months=months)
        session.flush()
    return DemoSummary(tokens=dict(DEMO_TOKENS), orders_created=len(created))


def _load_people(session: Session, *, settings: Settings) -> None:
    for code, name, ceiling in DISTRICTS:
        if auth_service.get_district_by_code(session, code) is None:
            auth_service.create_district(
                session, code=code, name=name, lv_ceiling_kw=ceiling, actor=None
            )
    crews = [(c, n, r, DISTRICT[0]) for c, n, r in CREWS] + [(*CREW_C[:2], False, CREW_C[2])]
    for crew_code, crew_name, repairs, district in crews:
        if auth_service.get_crew_by_code(session, crew_code) is None:
            auth_service.create_crew(
                session,
                code=crew_code,
                name=crew_name,
                district_code=district,
                handles_repairs=repairs,
                actor=None,
            )
    people: list[tuple[str, Role, str | None, str | None]] = [
        (n, r, c, DEMO_TOKENS[k]) for k, n, r, c in USERS
    ]
    key, member, member_crew = CREW_C_USER
    people.append((member, Role.crew, member_crew, DEMO_TOKENS[key]))
    for user_name, role, user_crew, token in people:
        exists = session.execute(select(User).where(User.name == user_name)).scalar_one_or_none()
        if exists is None:
            auth_service.create_user(
                session,
                name=user_name,
                role=role,
                crew_code=user_crew,
                settings=settings,
                actor=None,
                token=token,
            )


def _load_network_and_depots(session: Session, *, settings: Settings) -> None:
    """Transformers near the demo customers and a depot per district stocked with every kit's
    materials."""
    from field_api.network import service as network
    from standard_kits import load_catalogue

    admin = session.execute(select(User).where(User.role == Role.admin)).scalars().first()
    if admin is None:
        return
    actor = Principal(user_id=admin.id, name=admin.name, role=Role.admin)
    missing = [t for t in TRANSFORMERS if network.get_by_code(session, t[0]) is None]
    if missing:
        rows = ["code,name,rated_kva,load_kva,lon,lat"] + [
            f"{c},{n},{kva},{load},{lon:.6f},{lat:.6f}" for c, n, kva, load, lon, lat in missing
        ]
        network.import_file(
            session, "\n".join(rows).encode(), filename="demo-transformers.csv", actor=actor
        )
    for district, (code, name) in DEPOTS.items():
        if kits.get_depot_by_code(session, code) is None:
            kits.create_depot(session, code=code, name=name, district_code=district, actor=actor)
            stock = _stock(load_catalogue(), items=40, metres=3000)
            kits.receive(session, code, stock, actor=actor)


def _stock(catalogue: object, *, items: float, metres: float) -> dict[str, float]:
    wanted: dict[str, float] = {}
    for kit in catalogue.connection_kits:  # type: ignore[attr-defined]
        for item in kit.items:
            wanted[item.material] = items
        for per_metre in kit.per_metre:
            wanted[per_metre.material] = metres
    return wanted


# ---------------------------------------------------------------------------------- showcase


def _showcase(
    world: World, calendar: WorkingCalendar, now: datetime, rule: str | None,
    sink: Callable[[WorkOrder], None],
) -> None:
    """The twelve orders of the walk-through, each on its own recent timeline."""
    today = clock.to_china(now).date()
    tx_lon, tx_lat = TRANSFORMERS[2][4], TRANSFORMERS[2][5]  # the first is left for tests
    for i, (key, name, category, kw, phases, crew, target) in enumerate(ORDERS):
        n = i + 1
        day = working_day_before(calendar, today, SHOWCASE_AGE[n])
        created = at_china(day, 9, 10 + 3 * i)
        visit_day = day if target not in (Stage.called_back, Stage.closed) else (
            working_day_after(calendar, day, 1)
        )
        spec = OrderSpec(
            id_number=key,
            name=name,
            phone=f"1380013{i:04d}",
            category=category,
            kw=kw,
            phases=phases,
            district=DISTRICT[0],
            crew=crew,
            address=f"深圳市南山区科技园{n}号",
            lon=tx_lon + 0.00015 + 0.00005 * i,
            lat=tx_lat + 0.0001 + 0.00005 * (i % 4),
            applied_on=day,
        )
        callback = working_day_after(calendar, visit_day, 3)
        plan = Plan(
            spec=spec,
            created=created,
            depot=DEPOT[0],
            meter=demo_meter(900000 + n, rule),
            first_visit=at_china(visit_day, 13, 30),
            target=target,
            cancel_reason="客户撤回申请" if target == Stage.cancelled else None,
            park_reason="台区变压器容量不足，需电网改造" if target == Stage.whitelisted else None,
            callback_on=callback if target in (Stage.called_back, Stage.closed) else None,
            satisfaction=5,
            close_on=working_day_after(calendar, callback, 1) if target == Stage.closed else None,
        )
        stories.run_alone(world, stories.connection_story(world, plan, sink), created)
    world.at(now)


# ----------------------------------------------------------------------------------- history


def _history(
    world: World, calendar: WorkingCalendar, now: datetime, rule: str | None,
    sink: Callable[[WorkOrder], None], *, months: int,
) -> None:
    """About ``months`` months of orders for the three connection crews, up to yesterday."""
    from standard_kits import load_catalogue

    rng = random.Random(SEED)
    today = clock.to_china(now).date()
    catalogue = load_catalogue()
    # no history before the first completion-check card came into force (its checks need one)
    first_card = min(card.valid_from for card in catalogue.cards)
    start = max(today - timedelta(days=round(months * 30.4)), first_card)
    until = at_china(working_day_before(calendar, today, 1), 18)
    plans: list[Plan] = []
    deliveries: list[stories.Story] = []
    day = start
    serial = 0
    while day < today:
        if day.day == 1 or day == start:  # the monthly delivery to every depot
            stock = _stock(catalogue, items=30, metres=2500)
            deliveries += [_delivery(world, at_china(day, 8), code, stock) for code in DEPOT_OF]
        if calendar.is_working_day(day):
            for crew in ("CREW-A", "CREW-B", "CREW-C"):
                for _ in range(_orders_today(rng)):
                    serial += 1
                    plans.append(_plan(rng, calendar, crew, day, serial, today, rule))
        day += timedelta(days=1)
    world.clock.set(at_china(start, 8, 30))
    connections = [stories.connection_story(world, p, sink) for p in plans]
    outages = reliability.stories(world, start, today, until, (SURNAMES, GIVEN))
    stories.run_interleaved(world, deliveries + connections + outages, until=until)
    world.at(now)
    reliability.now_and_open_outage(world, start, today, (SURNAMES, GIVEN))


def _delivery(world: World, when: datetime, depot: str, lines: dict[str, float]) -> stories.Story:
    """The storekeeper books a delivery of materials into the depot."""
    yield when
    kits.receive(world.session, depot, lines, actor=world.cast.storekeeper)


def _orders_today(rng: random.Random) -> int:
    draw = rng.random()
    return 0 if draw < 0.81 else 1 if draw < 0.99 else 2


def _plan(
    rng: random.Random, calendar: WorkingCalendar, crew: str, day: date,
    serial: int, today: date, rule: str | None,
) -> Plan:
    # the draws keep their order: the seeded history depends on it
    spec, created = _order_spec(rng, calendar, crew, day, serial)
    # Most crews come within two working days; some orders wait (their deadlines are missed).
    delay = rng.choice([0, 1, 1, 2, 2]) if rng.random() > 0.15 else rng.randint(4, 8)
    visit_day = working_day_after(calendar, day, delay)
    first_visit = at_china(visit_day, rng.choice([9, 10, 13, 14, 15]), rng.randint(0, 50))
    if first_visit <= created:
        first_visit = created + timedelta(minutes=rng.randint(90, 150))
    plan = Plan(
        spec=spec, created=created, depot=DEPOT_OF_CREW[crew], meter=demo_meter(serial, rule),
        first_visit=first_visit,
    )
    fate = rng.random()
    if fate < 0.04:
        plan.target = Stage.cancelled
        plan.cancel_reason = rng.choice(["客户撤回申请", "客户改为高压报装", "房屋产权资料不全"])
        return plan
    if fate < 0.075:
        plan.target = Stage.whitelisted
        plan.park_reason = "台区变压器容量不足，需电网改造"
        return plan
    _plan_site_work(rng, calendar, plan, serial, visit_day)
    _plan_after_supply(rng, calendar, plan, today)
    plan.target = Stage.closed
    return plan


def _order_spec(
    rng: random.Random, calendar: WorkingCalendar, crew: str, day: date, serial: int
) -> tuple[OrderSpec, datetime]:
    """The order's application (customer, load, place) and when it is recorded."""
    district = "SZ-FT" if crew == "CREW-C" else "SZ-NS"
    _, _, _, _, tx_lon, tx_lat = rng.choice(SITES[district])
    category = Category.residential if rng.random() < 0.75 else Category.small_micro_enterprise
    if category == Category.residential:
        kw, phases = rng.choice([(6, 1), (8, 1), (8, 1), (10, 1), (12, 3), (15, 3)])
    else:
        kw, phases = rng.choice([(20, 3), (30, 3), (40, 3), (60, 3), (80, 3)])
    surname, given = rng.choice(SURNAMES), "".join(rng.sample(GIVEN, rng.choice([1, 2])))
    late_recorded = rng.random() < 0.03
    applied_on = working_day_before(calendar, day, rng.choice([4, 5, 6])) if late_recorded else day
    created = at_china(day, rng.randint(8, 15), rng.randint(0, 59))
    spec = OrderSpec(
        id_number=f"DH{serial:08d}",
        name=surname + given,
        phone=f"139{rng.randint(10000000, 99999999)}",
        category=category,
        kw=kw,
        phases=phases,
        district=district,
        crew=crew,
        address=f"深圳市{'福田区' if district == 'SZ-FT' else '南山区'}"
        f"{rng.choice(STREETS[district])}{rng.randint(1, 300)}号",
        lon=tx_lon + rng.uniform(-0.0005, 0.0005),
        lat=tx_lat + rng.uniform(-0.0005, 0.0005),
        applied_on=applied_on,
        channel=rng.choice([Channel.app, Channel.app, Channel.online, Channel.counter]),
    )
    return spec, created


def _plan_site_work(
    rng: random.Random, calendar: WorkingCalendar, plan: Plan, serial: int, visit_day: date
) -> None:
    """How the site work goes: recorded late, early photo, signing later, failed check, rework."""
    first_visit = plan.first_visit
    if serial % 25 == 7:  # recorded on site a few minutes before the crew "arrived"
        plan.created = first_visit - timedelta(minutes=rng.randint(3, 10))
        plan.pace = 0.2
    if rng.random() < 0.03:
        plan.early_photo = True
    if rng.random() < 0.10:
        plan.signs_later = at_china(
            working_day_after(calendar, visit_day, rng.randint(1, 3)), 10, rng.randint(0, 50)
        )
    if rng.random() < 0.2:
        plan.fail_item = rng.choice(
            ["earthing_resistance"] * 4 + ["insulation_resistance"] * 2
            + ["seal_numbers", "wiring_correct"]
        )
        if rng.random() < 0.4:
            back = plan.signs_later or first_visit
            plan.rework_later = at_china(
                working_day_after(calendar, back.astimezone(clock.CHINA_TZ).date(), 1),
                9, rng.randint(0, 50),
            )


def _plan_after_supply(
    rng: random.Random, calendar: WorkingCalendar, plan: Plan, today: date
) -> None:
    """The call-back (day, satisfaction, irregularity) and the closing, when before today."""
    last_visit = max(
        t for t in (plan.first_visit, plan.signs_later, plan.rework_later) if t is not None
    )
    energised_day = last_visit.astimezone(clock.CHINA_TZ).date()
    callback = working_day_after(calendar, energised_day, rng.choice([2, 3, 3, 3]))
    plan.callback_on = callback if callback < today else None
    satisfaction = rng.random()
    plan.satisfaction = 5 if satisfaction < 0.7 else 4 if satisfaction < 0.93 else 2
    if rng.random() < 0.03:
        plan.irregularity = rng.choice(
            [Irregularity.asked_to_pay, Irregularity.visited_more_than_once]
        )
    close = working_day_after(calendar, callback, rng.choice([1, 2, 3]))
    plan.close_on = close if close < today else None
