"""The stage machine of a low-voltage connection order, as pure functions."""

from __future__ import annotations

import enum

from field_api.common.actors import Role


class Stage(enum.StrEnum):
    accepted = "accepted"
    surveyed = "surveyed"
    scheme_answered = "scheme_answered"
    contract_signed = "contract_signed"
    installed = "installed"
    inspected = "inspected"
    energised = "energised"
    called_back = "called_back"
    closed = "closed"
    whitelisted = "whitelisted"
    cancelled = "cancelled"


class Category(enum.StrEnum):
    residential = "residential"
    small_micro_enterprise = "small_micro_enterprise"
    other_low_voltage = "other_low_voltage"


class Area(enum.StrEnum):
    urban = "urban"
    rural = "rural"


class Channel(enum.StrEnum):
    app = "app"
    online = "online"
    counter = "counter"
    phone = "phone"
    government_portal = "government_portal"


FLOW: tuple[Stage, ...] = (
    Stage.accepted,
    Stage.surveyed,
    Stage.scheme_answered,
    Stage.contract_signed,
    Stage.installed,
    Stage.inspected,
    Stage.energised,
    Stage.called_back,
    Stage.closed,
)

# Stages from which an order can be parked on the white list (grid reinforcement needed):
# once the contract is signed the supply point is settled.
WHITELISTABLE = frozenset({Stage.accepted, Stage.surveyed, Stage.scheme_answered})
CANCELLABLE = frozenset(FLOW[:6]) | {Stage.whitelisted}
TERMINAL = frozenset({Stage.closed, Stage.cancelled})

FIELD_STAGES = frozenset(
    {
        Stage.surveyed,
        Stage.scheme_answered,
        Stage.contract_signed,
        Stage.installed,
        Stage.inspected,
        Stage.energised,
    }
)


def next_in_flow(stage: Stage) -> Stage | None:
    if stage not in FLOW or stage == Stage.closed:
        return None
    return FLOW[FLOW.index(stage) + 1]


def allowed_targets(stage: Stage, *, parked_from: Stage | None = None) -> list[Stage]:
    """Every stage an order in ``stage`` may move to."""
    if stage in TERMINAL:
        return []
    if stage == Stage.whitelisted:
        targets = [parked_from] if parked_from is not None else []
        return [*targets, Stage.cancelled]
    targets = []
    following = next_in_flow(stage)
    if following is not None:
        targets.append(following)
    if stage in WHITELISTABLE:
        targets.append(Stage.whitelisted)
    if stage in CANCELLABLE:
        targets.append(Stage.cancelled)
    return targets


def transition_problem(
    stage: Stage, target: Stage, *, parked_from: Stage | None = None
) -> str | None:
    """None when ``stage → target`` is legal, else the reason naming the allowed moves."""
    allowed = allowed_targets(stage, parked_from=parked_from)
    if target in allowed:
        return None
    names = ", ".join(s.value for s in allowed) or "none (final stage)"
    return f"cannot move from {stage.value} to {target.value}; allowed: {names}"


def roles_for_target(target: Stage) -> frozenset[Role]:
    """Who may move an order into ``target``."""
    if target in FIELD_STAGES:
        return frozenset({Role.crew, Role.admin})
    if target in (Stage.called_back, Stage.closed):
        return frozenset({Role.service, Role.admin})
    if target in (Stage.whitelisted, Stage.cancelled):
        return frozenset({Role.service, Role.admin, Role.crew})
    return frozenset({Role.admin})


def capacity_problem(capacity_kw: float, *, ceiling_kw: float) -> str | None:
    """A low-voltage request above the district's ceiling is refused."""
    if capacity_kw > ceiling_kw:
        return (
            f"requested {capacity_kw:g} kW exceeds the district's low-voltage ceiling "
            f"of {ceiling_kw:g} kW; apply for a high-voltage connection"
        )
    return None
