"""Pure rules of the one-visit completion: walk the stages while the evidence is there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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


# ---------------------------------------------------------------------------- the evidence

ContractState = Literal["missing", "unsigned", "signed"]
CHECK_PHASES: tuple[tuple[str, Stage], ...] = (
    ("before_energising", Stage.inspected),
    ("supply_on", Stage.energised),
)
LANGUAGES: tuple[str, ...] = ("zh-CN", "en")


@dataclass(frozen=True)
class FailedItem:
    """A critical item that failed at a check's last attempt, as stored with the verdict."""

    code: str
    label: str
    """The name stored with the verdict (shown when the card has left the catalogue)."""
    reason: Any
    """The item's message (``{"code", "params"}``), or its English reason on older rows."""


@dataclass(frozen=True)
class CheckRecord:
    """The completion check of one phase as on record."""

    passed: bool = False
    """Some attempt of the phase passed."""
    attempt: int | None = None
    """The number of the last attempt; None when the check was never submitted."""
    failed: tuple[FailedItem, ...] = ()
    """The critical items that failed at the last attempt, in card order."""
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """The names of the last attempt's card items per language (empty when the card is gone)."""


@dataclass(frozen=True)
class EvidenceSnapshot:
    """Everything the one-visit stages are judged from, read once from the other slices."""

    arrival_distance_m: float
    photo_counts: Mapping[str, int] = field(default_factory=dict)
    """Photos on record per kind."""
    scheme_kit_code: str | None = None
    """The kit of the accepted supply scheme (None: no accepted scheme, or no kit on it)."""
    contract: ContractState = "missing"
    kit_issued: bool = False
    """A kit was picked up at a depot for the order."""
    scanned_barcode: str | None = None
    """What the terminal scanned with the latest barcode photo."""
    decoded_barcode: str | None = None
    """What the server decoded from that photo."""
    issued_meter_barcode: str | None = None
    """The meter issued with the kit, when known."""
    checks: Mapping[str, CheckRecord] = field(default_factory=dict)
    """The completion checks by phase (a phase absent was never submitted)."""


def survey_gaps(snapshot: EvidenceSnapshot, *, max_arrival_distance_m: float) -> list[Gap]:
    """On site (arrival GPS near the order) with a photo of the site."""
    gaps: list[Gap] = []
    if snapshot.arrival_distance_m > max_arrival_distance_m:
        gaps.append(
            Gap.of(
                Stage.surveyed,
                "arrival_position",
                "gap.arrival_position",
                distance_m=round(snapshot.arrival_distance_m),
                limit_m=round(max_arrival_distance_m),
            )
        )
    if snapshot.photo_counts.get("site", 0) < 1:
        gaps.append(Gap.of(Stage.surveyed, "photo_site", "gap.photo_site"))
    return gaps


def scheme_gaps(snapshot: EvidenceSnapshot) -> list[Gap]:
    """An accepted supply scheme saved on the order."""
    if snapshot.scheme_kit_code is None:
        return [Gap.of(Stage.scheme_answered, "scheme", "gap.scheme")]
    return []


def contract_gaps(snapshot: EvidenceSnapshot) -> list[Gap]:
    """The contract signed by the customer."""
    if snapshot.contract == "signed":
        return []
    if snapshot.contract == "missing":
        return [Gap.of(Stage.contract_signed, "contract", "gap.contract_missing")]
    return [Gap.of(Stage.contract_signed, "contract", "gap.contract_unsigned")]


def installation_gaps(snapshot: EvidenceSnapshot) -> list[Gap]:
    """Kit issued, meter barcode scanned and decoded from its photo and matching the issue."""
    gaps: list[Gap] = []
    if not snapshot.kit_issued:
        gaps.append(Gap.of(Stage.installed, "kit_issued", "gap.kit_issued"))
    barcode = barcode_gap(
        (snapshot.scanned_barcode or "").strip(),
        (snapshot.decoded_barcode or "").strip(),
        (snapshot.issued_meter_barcode or "").strip(),
    )
    return gaps if barcode is None else [*gaps, barcode]


def barcode_gap(scanned: str, decoded: str, issued: str) -> Gap | None:
    """What is wrong with the meter barcode (all values stripped), or None."""
    if not scanned:
        return Gap.of(Stage.installed, "meter_barcode", "gap.meter_barcode")
    if not decoded:
        return Gap.of(Stage.installed, "meter_barcode", "gap.meter_barcode_unreadable")
    if scanned != decoded:
        return Gap.of(
            Stage.installed,
            "meter_barcode",
            "gap.meter_barcode_differs",
            scanned=scanned,
            decoded=decoded,
        )
    if issued and scanned != issued:
        return Gap.of(
            Stage.installed, "meter_barcode", "gap.meter_not_issued", scanned=scanned, issued=issued
        )
    return None


def check_gaps(snapshot: EvidenceSnapshot, phase: str, stage: Stage) -> list[Gap]:
    """A passed completion check of ``phase``, else the failing items of the last attempt."""
    record = snapshot.checks.get(phase, CheckRecord())
    if record.passed:
        return []
    if record.attempt is None:
        return [Gap.of(stage, f"check_{phase}", "gap.check_missing", phase=phase)]
    names = {lang: record.labels.get(lang, {}) for lang in LANGUAGES}
    return [
        Gap.of(
            stage,
            f"check_{phase}.{i.code}",
            "gap.check_item_failed",
            attempt=record.attempt,
            # each item's name in both languages (the stored one when the card is gone)
            label={lang: names[lang].get(i.code, i.label) for lang in names},
            reason=i.reason,  # the item's message, rendered in the same language
        )
        for i in record.failed
    ] or [Gap.of(stage, f"check_{phase}", "gap.check_failed", attempt=record.attempt)]


def gaps_by_stage(
    snapshot: EvidenceSnapshot, *, max_arrival_distance_m: float
) -> dict[Stage, list[Gap]]:
    """The gaps of every one-visit stage, judged from the evidence on record."""
    gaps = {
        Stage.surveyed: survey_gaps(snapshot, max_arrival_distance_m=max_arrival_distance_m),
        Stage.scheme_answered: scheme_gaps(snapshot),
        Stage.contract_signed: contract_gaps(snapshot),
        Stage.installed: installation_gaps(snapshot),
    }
    for phase, stage in CHECK_PHASES:
        gaps[stage] = check_gaps(snapshot, phase, stage)
    return gaps


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
