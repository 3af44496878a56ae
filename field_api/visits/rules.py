"""Pure rules of the one-visit completion: walk the stages while the evidence is there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from field_api import messages
from field_api.work_orders.rules import FLOW, Stage

# The stages a crew passes on site, in order (survey → energisation).
ONE_VISIT_STAGES: tuple[Stage, ...] = (
    Stage.surveyed,
    Stage.scheme_answered,
    Stage.contract_signed,
    Stage.installed,
    Stage.inspected,
    Stage.energised,
)


@dataclass(frozen=True)
class Gap:
    """One missing piece of evidence: the stage it blocks, a stable code and the detail.

    ``message_code`` and ``params`` name its text in :mod:`field_api.messages` (``detail`` is
    the English of it).
    """

    stage: Stage
    code: str
    detail: str
    message_code: str = "gap.other"
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, stage: Stage, code: str, message_code: str, **params: Any) -> Gap:
        """The gap with its English detail rendered from the message catalogue."""
        return cls(stage, code, messages.render(message_code, params, "en"), message_code, params)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON form (stored on the visit, returned to the terminal)."""
        params = self.params if self.message_code != "gap.other" else {"detail": self.detail}
        return {
            "stage": self.stage.value,
            "code": self.code,
            "detail": self.detail,
            "message_code": self.message_code,
            "params": dict(params),
        }


def gaps_in(missing: Sequence[Mapping[str, Any]], language: str) -> list[dict[str, Any]]:
    """Stored gaps with their ``message`` in ``language`` (a gap stored before the catalogue
    keeps its English detail)."""
    shown: list[dict[str, Any]] = []
    for gap in missing:
        code = gap.get("message_code")
        text = (
            messages.render(code, gap.get("params") or {}, language)
            if isinstance(code, str)
            else str(gap.get("detail", ""))
        )
        shown.append({**gap, "message": text})
    return shown


@dataclass(frozen=True)
class CompletionPlan:
    """The stages to move through now, and where the walk stopped (with what is missing)."""

    moves: tuple[Stage, ...]
    stopped_at: Stage | None
    missing: tuple[Gap, ...] = field(default=())

    @property
    def complete(self) -> bool:
        """True when the order ends the walk energised."""
        return self.stopped_at is None


def remaining_stages(current: Stage) -> tuple[Stage, ...]:
    """The one-visit stages still ahead of an order in ``current`` (empty once energised)."""
    if current == Stage.accepted:
        return ONE_VISIT_STAGES
    if current in ONE_VISIT_STAGES:
        return ONE_VISIT_STAGES[ONE_VISIT_STAGES.index(current) + 1 :]
    return ()


def plan_completion(current: Stage, gaps: Mapping[Stage, Sequence[Gap]]) -> CompletionPlan:
    """Move through every stage ahead whose evidence is complete; stop at the first gap.

    Args:
        current: the order's stage now.
        gaps: the missing evidence per stage (a stage absent from the map has none).

    Returns:
        The plan; ``missing`` lists every gap of the first incomplete stage.
    """
    if current not in FLOW or current not in (Stage.accepted, *ONE_VISIT_STAGES):
        raise ValueError(f"an order in {current.value} is not on the one-visit path")
    moves: list[Stage] = []
    for stage in remaining_stages(current):
        missing = tuple(gaps.get(stage, ()))
        if missing:
            return CompletionPlan(moves=tuple(moves), stopped_at=stage, missing=missing)
        moves.append(stage)
    return CompletionPlan(moves=tuple(moves), stopped_at=None)


def is_one_visit(start_stage: Stage, stages_done: Sequence[str], *, visits_of_order: int) -> bool:
    """An order was connected in one visit when a single visit took it from acceptance to
    energisation (its only visit)."""
    return (
        visits_of_order == 1
        and start_stage == Stage.accepted
        and set(ONE_VISIT_STAGES) <= {Stage(s) for s in stages_done}
    )


def rate(numerator: int, denominator: int) -> float | None:
    """A share in [0, 1], or ``None`` when there is nothing to divide by."""
    return numerator / denominator if denominator else None
