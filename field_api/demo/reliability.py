"""The demo's reliability data, written through the reliability services.

Feeder sections for the demo's transformers (urban and rural areas of both districts), a customer
register of a few hundred accounts (imported at the history's start; each month's new
connections imported at the month's end, just before that month's snapshot), and outages over
the history's months: planned and fault, several causes, some restored in steps, a short one
(< 3 min) and one of 3-5 min, each closed outage approved by the planner the next morning; one
fault is left open now. Planned outages of whole feeder sections are requested and approved
against this year's customer-hours budget first; upcoming requests, a merge, an overspend
approved with its reason and live-line work come with them
(:mod:`field_api.demo.outage_planning`). The outages are sized so the year's urban SAIDI
comes near the 2.38 h target and the rural one stays below 8.52 h. Seeded apart from the
orders' history (its draws are untouched).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.auth.models import User
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.demo import outage_planning
from field_api.demo.stories import Story, at_china
from field_api.demo.world import World
from field_api.reliability import outages as outage_service
from field_api.reliability import register
from field_api.reliability.rules import Cause, OutageKind, next_month
from field_api.reliability.schemas import OutageClose, OutageCreate, RestorationCreate

SEED = 20261218

# transformer code → (switch, feeder, district, area, accounts)
SECTIONS: dict[str, tuple[str, str, str, str, int]] = {
    "TX-DEMO-01": ("SW-NS-101", "F-NS-KJ", "SZ-NS", "urban", 60),
    "TX-DEMO-02": ("SW-NS-101", "F-NS-KJ", "SZ-NS", "urban", 50),
    "TX-DEMO-03": ("SW-NS-101", "F-NS-KJ", "SZ-NS", "urban", 60),
    "TX-DEMO-04": ("SW-NS-102", "F-NS-KJ", "SZ-NS", "urban", 50),
    "TX-DEMO-05": ("SW-NS-201", "F-NS-SK", "SZ-NS", "rural", 40),
    "TX-FT-01": ("SW-FT-101", "F-FT-SN", "SZ-FT", "urban", 60),
    "TX-FT-02": ("SW-FT-101", "F-FT-SN", "SZ-FT", "urban", 50),
    "TX-FT-03": ("SW-FT-201", "F-FT-LH", "SZ-FT", "rural", 40),
}


@dataclass(frozen=True)
class OutagePlan:
    """One outage: when (days before today, China time), what, why, how it is restored.

    ``steps``: (minutes after the start, transformers back then); the last step closes it."""

    days_ago: int
    hour: int
    minute: int
    kind: OutageKind
    cause: Cause
    note: str
    steps: tuple[tuple[float, tuple[str, ...]], ...]
    switch: str | None = None
    feeder: str | None = None
    transformers: tuple[str, ...] = ()


P, F = OutageKind.planned, OutageKind.fault
OUTAGES: tuple[OutagePlan, ...] = (
    OutagePlan(160, 9, 0, P, Cause.planned_maintenance, "开关柜检修", ((240, ()),),
               switch="SW-NS-102"),
    OutagePlan(140, 8, 30, P, Cause.planned_maintenance, "线路迁改", ((360, ()),),
               transformers=("TX-FT-03",)),
    OutagePlan(121, 14, 12, F, Cause.external, "台风导致倒杆", ((300, ()),),
               feeder="F-NS-SK"),
    OutagePlan(98, 16, 40, F, Cause.fault, "电缆中间接头击穿，分段恢复",
               ((40, ("TX-DEMO-01",)), (70, ("TX-DEMO-02",)), (110, ())),
               switch="SW-NS-101"),
    OutagePlan(75, 9, 30, P, Cause.planned_maintenance, "配变增容", ((180, ()),),
               transformers=("TX-FT-02",)),
    OutagePlan(52, 11, 5, F, Cause.external, "车辆撞杆，转供后分段恢复",
               ((50, ("TX-FT-01",)), (95, ())), switch="SW-FT-101"),
    OutagePlan(33, 19, 20, F, Cause.customer_caused, "用户设备故障越级跳闸", ((45, ()),),
               transformers=("TX-DEMO-02",)),
    OutagePlan(24, 10, 0, F, Cause.fault, "低压出线故障", ((100, ()),),
               transformers=("TX-FT-03",)),
    OutagePlan(16, 9, 0, P, Cause.planned_maintenance, "计划检修（带电作业未覆盖部分）",
               ((50, ()),), transformers=("TX-DEMO-01",)),
    OutagePlan(9, 15, 33, F, Cause.fault, "重合闸动作，短时停电", ((2, ()),),
               transformers=("TX-DEMO-03",)),
    OutagePlan(5, 13, 8, F, Cause.supply_shortage, "上级电源切换", ((4, ()),),
               transformers=("TX-FT-01",)),
)
# The fault still open now: (minutes before now, transformers, cause, note)
OPEN_OUTAGE = (35, ("TX-DEMO-04",), Cause.fault, "台区低压开关跳闸，抢修中")


def _principal(session: Session, role: Role) -> Principal:
    user = session.execute(
        select(User).where(User.role == role).order_by(User.id).limit(1)
    ).scalar_one()
    return Principal(user_id=user.id, name=user.name, role=user.role)


def _sections_csv() -> bytes:
    rows = ["switch_code,feeder,district,transformer_code"] + [
        f"{switch},{feeder},{district},{code}"
        for code, (switch, feeder, district, _, _) in SECTIONS.items()
    ]
    return "\n".join(rows).encode()


def _accounts(
    rng: random.Random, start: date, today: date, names: tuple[str, str]
) -> list[tuple[date, str]]:
    """(connected on, CSV row) of every account; most connected long before ``start``.
    ``names``: the demo's surnames and given-name characters."""
    surnames, given = names
    out: list[tuple[date, str]] = []
    span = max((today - start).days, 1)
    for code, (switch, _, _, area, count) in SECTIONS.items():
        for n in range(count):
            if rng.random() < 0.05:
                connected = start + timedelta(days=rng.randrange(span))
            else:
                connected = date(2012, 1, 1) + timedelta(days=rng.randrange(5000))
            name = rng.choice(surnames) + "".join(rng.sample(given, rng.choice([1, 2])))
            phone = f"137{rng.randint(10000000, 99999999)}"
            account = f"AC{code[3:].replace('-', '')}{n + 1:04d}"
            point = f"SP-{code}-{n // 2 + 1:03d}"
            out.append((connected, f"{account},{name},{phone},{point},lv,{code},{switch},"
                                   f"{area},{connected.isoformat()}"))
    return out


def _customers_csv(rows: list[str]) -> bytes:
    header = ("account_no,name,phone,supply_point,supply_kind,transformer_code,switch_code,"
              "area,connected_on")
    return "\n".join([header, *rows]).encode()


def stories(
    world: World, start: date, today: date, until: datetime, names: tuple[str, str]
) -> list[Story]:
    """The register (imported now, at the history's start), the months' new connections and
    snapshots, and the outages of the history (those that began on or after ``start``)."""
    session, admin = world.session, world.cast.admin
    accounts = _accounts(random.Random(SEED), start, today, names)
    register.import_sections(session, _sections_csv(), filename="demo-feeder-sections.csv",
                             actor=admin)
    earlier = [row for connected, row in accounts if connected < start]
    register.import_customers(session, _customers_csv(earlier), filename="demo-customers.csv",
                              actor=admin)
    out: list[Story] = []
    month = date(start.year, start.month, 1)
    while next_month(month) <= today:
        out.append(_month_end(world, month, accounts, start, until))
        month = next_month(month)
    planner, dispatcher = _principal(session, Role.planner), _principal(session, Role.dispatcher)
    outage_planning.set_budgets(world, today.year, planner)
    for plan in OUTAGES:
        began = at_china(today - timedelta(days=plan.days_ago), plan.hour, plan.minute)
        if clock.china_date(began) >= start:
            out.append(_outage_story(world, plan, began, at_china(start, 9), (dispatcher, planner)))
    return out


def _outage_story(
    world: World, plan: OutagePlan, began: datetime, earliest: datetime,
    people: tuple[Principal, Principal],
) -> Story:
    """A planned outage of a whole feeder section in one step goes through a request
    (:mod:`field_api.demo.outage_planning`); any other is recorded as it happens."""
    dispatcher, planner = people
    switch = outage_planning.whole_section(plan.switch, plan.transformers, SECTIONS)
    if plan.kind is OutageKind.planned and switch is not None and len(plan.steps) == 1:
        end = began + timedelta(minutes=plan.steps[0][0])
        return outage_planning.requested_outage(
            world, switch, plan.note, began, end, earliest, dispatcher, planner
        )
    return _outage(world, plan, began, dispatcher, planner)


def _month_end(
    world: World, month: date, accounts: list[tuple[date, str]], start: date, until: datetime
) -> Story:
    """At the month's end (or the history's last step) its new connections are imported and
    the register's snapshot taken."""
    last = next_month(month) - timedelta(days=1)
    yield min(at_china(last, 17, 30), until)
    _new_connections(world, month, last, accounts, start)


def _new_connections(
    world: World, month: date, last: date, accounts: list[tuple[date, str]], start: date
) -> None:
    new = [row for connected, row in accounts if month <= connected <= last and connected >= start]
    if new:
        register.import_customers(world.session, _customers_csv(new),
                                  filename=f"demo-customers-{month:%Y-%m}.csv",
                                  actor=world.cast.admin)
    register.snapshot_month(world.session, month, actor=world.cast.admin)


def _outage(
    world: World, plan: OutagePlan, began: datetime, dispatcher: Principal, planner: Principal
) -> Story:
    """The dispatcher records the outage at its start, restores it step by step and closes
    it; the planner approves it the next morning."""
    yield began
    body = OutageCreate(kind=plan.kind, cause=plan.cause, start_at=began, feeder=plan.feeder,
                        switch_code=plan.switch, transformer_codes=list(plan.transformers),
                        note=plan.note)
    outage = outage_service.record_outage(world.session, body, dispatcher)
    for minutes, back in plan.steps:
        when = began + timedelta(minutes=minutes)
        yield when
        if back:
            outage_service.restore(world.session, outage.id,
                                   RestorationCreate(transformer_codes=list(back), at=when),
                                   dispatcher)
        else:
            outage_service.close(world.session, outage.id, OutageClose(end_at=when), dispatcher)
    yield at_china(clock.china_date(began) + timedelta(days=1), 9, 15)
    outage_service.approve(world.session, outage.id, planner)


def now_and_open_outage(
    world: World, start: date, today: date, names: tuple[str, str]
) -> None:
    """This month's new connections and snapshot, and the fault the dispatcher is working on
    now (left open)."""
    accounts = _accounts(random.Random(SEED), start, today, names)
    month = date(today.year, today.month, 1)
    _new_connections(world, month, today, accounts, start)
    minutes, codes, cause, note = OPEN_OUTAGE
    body = OutageCreate(kind=OutageKind.fault, cause=cause,
                        start_at=clock.now() - timedelta(minutes=minutes),
                        transformer_codes=list(codes), note=note)
    dispatcher = _principal(world.session, Role.dispatcher)
    outage_service.record_outage(world.session, body, dispatcher)
    outage_planning.upcoming(world, today, dispatcher, _principal(world.session, Role.planner))
