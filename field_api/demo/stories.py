"""The demo's orders as stories: what happens to each, and when.

A story is a generator that yields the moment of its next step and then does that step through
:class:`~field_api.demo.world.World`. :func:`run_interleaved` runs many stories in time order on
one manual clock (the history), :func:`run_alone` one story on its own timeline (the showcase
orders, each left at one stage for the API walk-through).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from field_api.callbacks.rules import Irregularity
from field_api.common.calendar import WorkingCalendar
from field_api.common.clock import CHINA_TZ
from field_api.demo.world import OrderSpec, World
from field_api.errors import ValidationFailed
from field_api.media.rules import MediaKind
from field_api.meters import meter_code
from field_api.visits.models import Visit
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage

Story = Iterator[datetime]


def at_china(day: date, hour: int, minute: int = 0) -> datetime:
    """``day`` at ``hour:minute`` China time, as an aware UTC datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=CHINA_TZ).astimezone(UTC)


def working_day_after(calendar: WorkingCalendar, day: date, n: int) -> date:
    """The ``n``-th working day after ``day`` (``n`` = 0: ``day`` itself if working)."""
    current = day
    if n == 0:
        while not calendar.is_working_day(current):
            current += timedelta(days=1)
        return current
    while n > 0:
        current += timedelta(days=1)
        if calendar.is_working_day(current):
            n -= 1
    return current


def working_day_before(calendar: WorkingCalendar, day: date, n: int) -> date:
    current = day
    while n > 0:
        current -= timedelta(days=1)
        if calendar.is_working_day(current):
            n -= 1
    return current


def demo_meter(serial: int, check_digit_rule: str | None) -> str:
    """A 22-digit meter code (Shenzhen unit 44030, type 05) valid under the configured rule."""
    body = f"4403005{serial:014d}"
    for digit in "0123456789":
        try:
            return meter_code(body + digit, check_digit_rule=check_digit_rule)
        except ValidationFailed:
            continue
    raise RuntimeError(f"no check digit makes {body} a meter code")


@dataclass
class Plan:
    """What happens to one order (all choices drawn up front from the seeded generator)."""

    spec: OrderSpec
    created: datetime
    depot: str
    meter: str
    first_visit: datetime
    # the farthest the story goes: surveyed, scheme_answered, ..., closed, whitelisted, cancelled
    target: Stage = Stage.closed
    cancel_reason: str | None = None
    park_reason: str | None = None
    # the customer is not there to sign: the crew leaves after the scheme and comes back
    signs_later: datetime | None = None
    fail_item: str | None = None  # first before-energising attempt fails on this item
    rework_later: datetime | None = None  # the rework needs another visit (next working day)
    early_photo: bool = False  # a site photo taken before the application was recorded
    callback_on: date | None = None
    satisfaction: int = 5
    irregularity: Irregularity | None = None
    close_on: date | None = None
    # how fast the crew works (1: as usual; an order recorded on site after the work is done
    # goes through in minutes, which the detectors flag as installed too soon)
    pace: float = 1.0


def connection_story(world: World, plan: Plan, sink: Callable[[WorkOrder], None]) -> Story:
    """One order's life from the application to the stage the plan reaches."""
    yield plan.created
    order = world.record_application(plan.spec)
    sink(order)
    if plan.target == Stage.accepted:
        return
    if plan.target == Stage.cancelled and plan.cancel_reason and plan.park_reason is None:
        yield plan.first_visit
        world.cancel(order, plan.cancel_reason)
        return
    # The storekeeper prepares nothing before the scheme: the kit follows the scheme's answer.
    yield plan.first_visit
    first = world.arrive(order)
    if not _survey(world, plan, order, first):
        return
    visit = yield from _scheme_and_contract(world, plan, order, first)
    if visit is None:
        return
    visit = yield from _install_and_inspect(world, plan, order, visit)
    if visit is None:
        return
    _energise(world, plan, order, visit)
    if plan.target == Stage.energised or plan.callback_on is None:
        return
    yield from _after_supply(world, plan, order, plan.callback_on)


def _wait(world: World, plan: Plan, minutes: float) -> None:
    world.later(minutes * plan.pace)


def _survey(world: World, plan: Plan, order: WorkOrder, visit: Visit) -> bool:
    """The survey on the first visit; ``False`` when the story ends there (or parks)."""
    _wait(world, plan, 8)
    if plan.early_photo:
        world.photo(order, MediaKind.site, taken=plan.created - timedelta(days=2))
    else:
        world.photo(order, MediaKind.site)
    _wait(world, plan, 4)
    world.complete(order, visit)  # surveyed
    if plan.target == Stage.surveyed:
        _wait(world, plan, 15)
        world.depart(order, visit)
        return False
    if plan.park_reason is not None:
        _wait(world, plan, 20)
        world.park(order, plan.park_reason, expected_on=plan.first_visit.date() + timedelta(90))
        _wait(world, plan, 5)
        world.depart(order, visit)
        return False
    return True


def _scheme_and_contract(
    world: World, plan: Plan, order: WorkOrder, visit: Visit
) -> Generator[datetime, None, Visit | None]:
    """Scheme and contract (the customer may sign on a later visit); the visit goes on."""
    _wait(world, plan, 12)
    world.request_scheme(order)  # scheme_answered
    if plan.target == Stage.scheme_answered or plan.signs_later is not None:
        _wait(world, plan, 10)
        world.depart(order, visit)
        if plan.target == Stage.scheme_answered or plan.signs_later is None:
            return None
        yield plan.signs_later
        visit = world.arrive(order)
        _wait(world, plan, 5)
    _wait(world, plan, 10)
    world.sign_contract(order)  # contract_signed
    if plan.target == Stage.contract_signed:
        _wait(world, plan, 10)
        world.depart(order, visit)
        return None
    return visit


def _install_and_inspect(
    world: World, plan: Plan, order: WorkOrder, visit: Visit
) -> Generator[datetime, None, Visit | None]:
    """Kit, installation and the check before energising (a failed one may need rework)."""
    # The storekeeper issues the scheme's kit; a depot runner brings it to the site.
    world.issue_kit(order, plan.depot, plan.meter)
    _wait(world, plan, 35)
    world.install(order, plan.meter)
    _wait(world, plan, 5)
    world.complete(order, visit)  # installed; the check before energising is missing
    if plan.target == Stage.installed:
        _wait(world, plan, 10)
        world.depart(order, visit)
        return None
    _wait(world, plan, 20)
    if plan.fail_item is not None:
        world.check(order, "before_energising", fail=plan.fail_item)
        _wait(world, plan, 6)
        world.complete(order, visit)  # stops at inspected, naming the failed item
        if plan.rework_later is not None:
            _wait(world, plan, 10)
            world.depart(order, visit)
            yield plan.rework_later
            visit = world.arrive(order)
        _wait(world, plan, 40)
    world.check(order, "before_energising")  # inspected
    if plan.target == Stage.inspected:
        _wait(world, plan, 10)
        world.depart(order, visit)
        return None
    return visit


def _energise(world: World, plan: Plan, order: WorkOrder, visit: Visit) -> None:
    """The meter photo, supply on, and the crew leaves."""
    _wait(world, plan, 25)
    world.photo(order, MediaKind.meter_after)
    _wait(world, plan, 3)
    world.check(order, "supply_on")  # energised
    _wait(world, plan, 2)
    world.complete(order, visit)
    _wait(world, plan, 12)
    world.depart(order, visit)


def _after_supply(world: World, plan: Plan, order: WorkOrder, callback_on: date) -> Story:
    """The customer call-back and, when the plan goes that far, the follow-ups and closing."""
    yield at_china(callback_on, 10, (order.id * 7) % 50)
    irregularities = (plan.irregularity,) if plan.irregularity is not None else ()
    world.call_back(
        order,
        satisfaction=plan.satisfaction,
        irregularities=irregularities,
        notes="客户对接电服务表示满意" if plan.satisfaction >= 4 else "客户反映等待时间较长",
    )
    if plan.target == Stage.called_back or plan.close_on is None:
        return
    yield at_china(plan.close_on, 15, (order.id * 11) % 50)
    world.resolve_follow_ups(order, "已回访核实，施工人员已批评教育并退还费用")
    world.close(order)


def run_alone(world: World, story: Story, start: datetime) -> None:
    """Run one story on its own timeline starting at ``start``."""
    world.clock.set(start)
    for when in story:
        world.at(when)


def run_interleaved(world: World, stories: list[Story], *, until: datetime) -> None:
    """Run every story's steps in time order; steps due after ``until`` are not done."""
    queue: list[tuple[datetime, int, Story]] = []
    for seq, story in enumerate(stories):
        first = next(story, None)
        if first is not None:
            heapq.heappush(queue, (first, seq, story))
    while queue:
        when, seq, story = heapq.heappop(queue)
        if when > until:
            continue
        world.at(when)
        following = next(story, None)
        if following is not None:
            heapq.heappush(queue, (following, seq, story))


def draw(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]
