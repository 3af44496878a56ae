"""The demo's planned-outage budget, requests and live-line work, through the planning services.

At the history's start the planner sets this year's budget of each demo district (the proposal
from the targets and last year's fault share, rounded). The history's planned outages of whole
feeder sections go through requests: the dispatcher asks ten days before (or at the history's
start), the planner approves two hours later, the dispatcher records the outage when it begins
and closes it at its end, the planner approves the record the next morning. Now: upcoming
requests, one approved over the budget with a reason, two merged into one outage ("one outage,
many uses"), two more left as a merge proposal, one waiting alone; and live-line jobs of the past
months (customer-hours avoided). None of the upcoming outages has happened, so the indices do not
change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

from field_api.common import clock
from field_api.common.actors import Principal
from field_api.demo.stories import at_china
from field_api.demo.world import World
from field_api.reliability import merging, planning
from field_api.reliability import outages as outage_service
from field_api.reliability.planning_schemas import (
    BudgetSet,
    LiveLineCreate,
    MergeCreate,
    PlannedOutageApprove,
    PlannedOutageCreate,
    PlannedOutageRead,
    PlannedOutageStart,
)
from field_api.reliability.schemas import OutageClose

DISTRICTS = ("SZ-NS", "SZ-FT")
PLAN_REASON = "已列入年度检修计划，分管领导同意"

# Upcoming: (switch, days from today, start hour, hours, work, requester or None: the dispatcher)
OVERSPEND = ("SW-NS-101", 12, 8, 4, "更换10kV柱上开关及避雷器", None)
OVERSPEND_REASON = "迎峰度夏前必须更换老旧开关（存在拒动隐患），已报分管领导同意"
MERGED = (
    ("SW-NS-201", 15, 9, 2, "更换低压出线电缆", None),
    ("SW-NS-201", 19, 9, 3, "配变台区消缺", "蛇口供电所 李工"),
)
PROPOSED = (
    ("SW-FT-101", 25, 9, 2, "10kV线路迁改配合", "福田供电所 陈工"),
    ("SW-FT-101", 31, 9, 3, "环网柜更换", None),
)
WAITING = ("SW-NS-102", 40, 9, 2, "开关柜预防性试验", None)
# Live-line work: (switch, days ago, hours an outage would have taken, work)
LIVE_LINE = (
    ("SW-NS-101", 100, 4, "带电更换跌落式熔断器"),
    ("SW-FT-101", 60, 3, "带电加装故障指示器"),
    ("SW-NS-201", 20, 2, "带电搭接新增用户引线"),
)

Story = Iterator[datetime]


def set_budgets(world: World, year: int, planner: Principal) -> None:
    """The planner sets each district's budget: the proposal, rounded to whole hours."""
    for district in DISTRICTS:
        found, _ = planning.proposal(world.session, world.settings, district, year)
        planning.set_budget(world.session, world.settings, planner, district, year, BudgetSet(
            customer_hours=round(found.customer_hours), reason="按可靠性目标与上年故障占比核定",
        ))


def _approve(
    world: World, request_id: int, planner: Principal, reason: str = PLAN_REASON
) -> PlannedOutageRead:
    """Approve; with the reason only when it would overspend (the service refuses it then)."""
    found = planning.read_one(world.session, world.settings, planner, request_id)
    body = PlannedOutageApprove(overspend_reason=reason if found.overspend else None)
    return planning.approve(world.session, world.settings, request_id, body, planner)


def requested_outage(
    world: World, switch: str, work: str, began: datetime, end: datetime, earliest: datetime,
    dispatcher: Principal, planner: Principal,
) -> Story:
    """A planned outage of a whole section from its request to its approved outage record."""
    asked = max(began - timedelta(days=10), earliest)
    yield asked
    made = planning.request_outage(world.session, world.settings, PlannedOutageCreate(
        work=work, switch_code=switch, start_at=began, end_at=end), dispatcher)
    yield min(asked + timedelta(hours=2), began)
    _approve(world, made.id, planner)
    yield began
    started = planning.start_outage(world.session, world.settings, made.id,
                                    PlannedOutageStart(start_at=began), dispatcher)
    assert started.outage_id is not None
    yield end
    outage_service.close(world.session, started.outage_id, OutageClose(end_at=end), dispatcher)
    yield at_china(clock.china_date(began) + timedelta(days=1), 9, 15)
    outage_service.approve(world.session, started.outage_id, planner)


def _request(
    world: World, plan: tuple[str, int, int, int, str, str | None], today: date,
    dispatcher: Principal,
) -> PlannedOutageRead:
    switch, days, hour, hours, work, requester = plan
    start = at_china(today + timedelta(days=days), hour)
    return planning.request_outage(world.session, world.settings, PlannedOutageCreate(
        work=work, switch_code=switch, start_at=start, end_at=start + timedelta(hours=hours),
        requester=requester), dispatcher)


def upcoming(world: World, today: date, dispatcher: Principal, planner: Principal) -> None:
    """Now: the merged pair (approved), the overspend approved with its reason, a merge
    proposal and a request waiting; live-line work of the past months."""
    merged = [_request(world, plan, today, dispatcher) for plan in MERGED]
    host = merging.merge(world.session, world.settings,
                         MergeCreate(request_ids=[r.id for r in merged]), planner)
    _approve(world, host.id, planner)
    over = _request(world, OVERSPEND, today, dispatcher)
    _approve(world, over.id, planner, OVERSPEND_REASON)
    for plan in (*PROPOSED, WAITING):
        _request(world, plan, today, dispatcher)
    for switch, days_ago, hours, work in LIVE_LINE:
        merging.record_live_line(world.session, LiveLineCreate(
            work=work, switch_code=switch, done_on=today - timedelta(days=days_ago),
            outage_hours=hours), dispatcher)


def whole_section(switch: str | None, transformers: tuple[str, ...],
                  sections: dict[str, tuple[str, str, str, str, int]]) -> str | None:
    """The switch whose whole section these transformers are (or ``switch`` itself)."""
    if switch is not None:
        return switch
    below = {sections[t][0] for t in transformers if t in sections}
    if len(below) != 1:
        return None
    found = below.pop()
    return found if {t for t, s in sections.items() if s[0] == found} == set(transformers) else None
