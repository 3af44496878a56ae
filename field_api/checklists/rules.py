"""Pure evaluation of a completion-check card (竣工检验卡) against the crew's submitted values.

Every item of the card (or of one phase of it) is evaluated to pass/fail with a reason; a
measurement outside its limits quotes the limit; a failed critical item fails the card, a failed
non-critical item leaves a remark. Items of type photo and barcode_match are judged from the
evidence in :class:`CheckContext`, never from a typed value, because a typed meter number is
exactly what the barcode check exists to rule out.

No web or database imports: the acceptance service loads the card version in force for the
order, builds the context from the scheme, the media and the issued kit, and stores the result.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from field_api.messages import Message
from standard_kits.schemas import (
    BarcodeMatchItem,
    CardItem,
    ChecklistCard,
    CheckPhase,
    ChoiceItem,
    LimitOverride,
    MeasurementItem,
    PhotoItem,
    TextItem,
    YesNoItem,
)

ItemValue = bool | int | float | str | None
CardStatus = Literal["passed", "passed_with_remarks", "failed"]
PHASES: tuple[CheckPhase, ...] = ("before_energising", "supply_on")


@dataclass(frozen=True, slots=True)
class PhysicalRange:
    """What an instrument can read at all, per unit; outside it a reading is impossible."""

    lower: float | None
    upper: float | None
    why: str  # English
    why_key: str = ""  # the same as a message of field_api.messages


# A reading outside these is a typing or instrument error, never a failed check: it is refused
# (422) and no attempt is stored. Voltages: every low-voltage AC reading lies in 0–1000 V
# (GB/T 156 / IEC 60038 low voltage is ≤ 1000 V AC); resistances, lengths, sections, currents
# and times cannot be negative.
PHYSICAL_RANGES: dict[str, PhysicalRange] = {
    "V": PhysicalRange(
        0.0, 1000.0, "a low-voltage AC reading lies between 0 and 1000 V", "check.why_voltage"
    ),
    "Ω": PhysicalRange(0.0, None, "a resistance cannot be negative", "check.why_resistance"),
    "MΩ": PhysicalRange(0.0, None, "a resistance cannot be negative", "check.why_resistance"),
    "A": PhysicalRange(0.0, None, "a current rating cannot be negative", "check.why_current"),
    "mm²": PhysicalRange(0.0, None, "a cross-section cannot be negative", "check.why_section"),
    "m": PhysicalRange(0.0, None, "a length or height cannot be negative", "check.why_length"),
    "ms": PhysicalRange(0.0, None, "a time cannot be negative", "check.why_time"),
    "s": PhysicalRange(0.0, None, "a time cannot be negative", "check.why_time"),
    "°C": PhysicalRange(
        -273.15, None, "a temperature cannot be below absolute zero", "check.why_temperature"
    ),
}


def physical_problem(unit: str, value: float) -> str | None:
    """Why ``value`` in ``unit`` cannot be a real reading, or None when it can."""
    why = physical_message(unit, value)
    return why.english if why else None


def physical_message(unit: str, value: float) -> Message | None:
    """:func:`physical_problem` as a message of :mod:`field_api.messages`."""
    bounds = PHYSICAL_RANGES.get(unit)
    if bounds is None:
        return None
    if (bounds.lower is not None and value < bounds.lower) or (
        bounds.upper is not None and value > bounds.upper
    ):
        return Message(
            "check.impossible",
            {"value": f"{value:g}", "unit": unit, "why": Message(bounds.why_key).as_dict()},
        )
    return None


class ChecklistInputError(ValueError):
    """Submitted values that cannot be evaluated; ``problems`` names each item and why (in
    English), ``messages`` the same as messages of :mod:`field_api.messages`."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.problems = [m.english for m in messages]
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Evidence the card is checked against besides the crew's typed values."""

    scheme_cable_section_mm2: float | None = None
    scheme_breaker_rating_a: float | None = None
    scheme_ct_primary_a: float | None = None
    scanned_barcode: str | None = None
    """What the terminal's scanner read from the meter."""
    decoded_barcode: str | None = None
    """What the server decoded from the barcode photo."""
    issued_meter_barcode: str | None = None
    """The meter issued with the kit for this order, when known."""
    photo_counts: Mapping[str, int] = field(default_factory=dict)
    """Number of photos on record per kind (site, meter_box, seal, ...)."""
    transformer_rated_kva: float | None = None
    barcode_analysis_pending: bool = False
    """The latest barcode photo is stored but the server has not decoded it yet."""

    @staticmethod
    def count_photos(kinds: Iterable[str]) -> dict[str, int]:
        """Photo counts per kind from the kinds of the photos on record."""
        counts: dict[str, int] = {}
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
        return counts


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The verdict on one item."""

    code: str
    type: str
    phase: CheckPhase
    critical: bool
    passed: bool
    value: ItemValue
    reason: str | None = None  # English
    # The reason as a message of field_api.messages ({"code", "params"}), None when passed.
    message: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CardResult:
    """The verdict on a card, or on one phase of it."""

    card_code: str
    card_version: int
    phase: CheckPhase | None
    items: tuple[ItemResult, ...]

    @property
    def failed_critical(self) -> tuple[ItemResult, ...]:
        """Failed items that fail the card."""
        return tuple(i for i in self.items if not i.passed and i.critical)

    @property
    def remarks(self) -> tuple[ItemResult, ...]:
        """Failed non-critical items: recorded, but the card still passes."""
        return tuple(i for i in self.items if not i.passed and not i.critical)

    @property
    def passed(self) -> bool:
        """Whether no critical item failed."""
        return not self.failed_critical

    @property
    def status(self) -> CardStatus:
        """passed, passed_with_remarks or failed."""
        if not self.passed:
            return "failed"
        return "passed_with_remarks" if self.remarks else "passed"


def evaluate_card(
    card: ChecklistCard,
    values: Mapping[str, ItemValue],
    context: CheckContext,
    *,
    phase: CheckPhase | None = None,
) -> CardResult:
    """Evaluate every item of ``card`` (or of one ``phase``) against values and evidence.

    Values for the other phase's items may be present (the whole card's values can be passed
    for each phase); they are type-checked but do not count. Raises ChecklistInputError when a
    value names no item of the card, has the wrong type for its item, or is given for an item
    judged from evidence; a missing value is not an input error but a failed item
    ("not submitted").
    """
    _check_values(card, values)
    items = card.items if phase is None else card.items_in(phase)
    return CardResult(
        card_code=card.code,
        card_version=card.version,
        phase=phase,
        items=tuple(evaluate_item(i, values.get(i.code), context) for i in items),
    )


def evaluate_phases(
    card: ChecklistCard, values: Mapping[str, ItemValue], context: CheckContext
) -> dict[CheckPhase, CardResult]:
    """Evaluate each phase of the card separately (before energising, with the supply on)."""
    return {ph: evaluate_card(card, values, context, phase=ph) for ph in PHASES}


def evaluate_item(item: CardItem, value: ItemValue, context: CheckContext) -> ItemResult:
    """The verdict on one item; ``value`` must already have the item's type (see evaluate_card)."""
    why: Message | None
    if isinstance(item, PhotoItem):
        passed, why = _photo(item, context)
    elif isinstance(item, BarcodeMatchItem):
        passed, why = _barcode(context)
    elif value is None:
        passed, why = False, Message("check.not_submitted")
    elif isinstance(item, YesNoItem):
        passed = value is item.expected
        why = None if passed else Message(
            "check.answered",
            {"answered": _yes_no(value), "required": _yes_no(item.expected)},
        )
    elif isinstance(item, MeasurementItem):
        passed, why = _measurement(item, float(value), context)
    elif isinstance(item, ChoiceItem):
        passed = value in item.pass_options
        why = None if passed else Message(
            "check.not_acceptable", {"value": repr(value), "options": list(item.pass_options)}
        )
    else:
        passed, why = _text(item, str(value))
    return ItemResult(
        code=item.code, type=item.type, phase=item.phase, critical=item.critical,
        passed=passed, value=value, reason=why.english if why else None,
        message=why.as_dict() if why else None,
    )


def missing_evidence(
    card: ChecklistCard, context: CheckContext, *, phase: CheckPhase | None = None
) -> list[Message]:
    """The evidence the items of ``card`` (or of one ``phase``) are judged from but that does
    not exist yet: photos of a kind fewer than required, no barcode photo with its scanned
    value. Submitting before it exists is refused, not failed.
    """
    items = card.items if phase is None else card.items_in(phase)
    missing: list[Message] = []
    for item in items:
        if isinstance(item, PhotoItem):
            have = context.photo_counts.get(item.kind, 0)
            if have < item.min_count:
                missing.append(
                    Message(
                        "check.more_photos",
                        {
                            "item": item.code,
                            "more": item.min_count - have,
                            "kind": item.kind,
                            "have": have,
                            "required": item.min_count,
                        },
                    )
                )
        elif isinstance(item, BarcodeMatchItem) and not (context.scanned_barcode or "").strip():
            missing.append(Message("check.barcode_photo_needed", {"item": item.code}))
    return missing


def evidence_pending(
    card: ChecklistCard, context: CheckContext, *, phase: CheckPhase | None = None
) -> list[str]:
    """Evidence on record but not processed yet (the barcode photo's decoding still runs):
    the check waits for it rather than failing the item."""
    items = card.items if phase is None else card.items_in(phase)
    return [
        f"{item.code}: the barcode photo is not decoded yet"
        for item in items
        if isinstance(item, BarcodeMatchItem)
        and (context.scanned_barcode or "").strip()
        and context.barcode_analysis_pending
    ]


def _check_values(card: ChecklistCard, values: Mapping[str, ItemValue]) -> None:
    by_code = {i.code: i for i in card.items}
    problems: list[Message] = []
    for code, value in values.items():
        item = by_code.get(code)
        problem: Message | None = None
        if item is None:
            problem = Message("check.not_on_card", {"card": card.code})
        elif value is not None:
            problem = _type_problem(item, value)
        if problem:
            problems.append(
                Message("check.value_problem", {"item": code, "problem": problem.as_dict()})
            )
    if problems:
        raise ChecklistInputError(problems)


def _type_problem(item: CardItem, value: ItemValue) -> Message | None:
    if isinstance(item, PhotoItem | BarcodeMatchItem):
        return Message("check.judged_from_evidence")
    if isinstance(item, YesNoItem) and not isinstance(value, bool):
        return Message("check.expected_yes_no")
    if isinstance(item, MeasurementItem):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Message("check.expected_number", {"unit": item.unit})
        if not math.isfinite(value):
            return Message("check.expected_finite")
        impossible = physical_message(item.unit, float(value))
        if impossible:
            return impossible
    if isinstance(item, ChoiceItem) and value not in item.options:
        return Message("check.expected_one_of", {"options": list(item.options)})
    if isinstance(item, TextItem) and not isinstance(value, str):
        return Message("check.expected_text")
    return None


def _measurement(
    item: MeasurementItem, value: float, context: CheckContext
) -> tuple[bool, Message | None]:
    unit = item.unit
    if item.reference is not None:
        expected = getattr(context, item.reference)
        if expected is None:
            return False, Message("check.no_scheme_figure", {"reference": item.reference})
        if math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-9):
            return True, None
        return False, Message(
            "check.differs_from_scheme",
            {"value": f"{value:g}", "unit": unit, "expected": f"{expected:g}"},
        )
    lower, upper = item.lower, item.upper
    note: dict[str, Any] | str = ""
    override = _override(item.overrides, context.transformer_rated_kva)
    if override is not None:
        lower, upper = override.lower, override.upper
        note = Message(
            "check.small_transformer_limit", {"kva": f"{override.transformer_kva_at_most:g}"}
        ).as_dict()
    if lower is not None and value < lower:
        return False, Message(
            "check.below_lower",
            {"value": f"{value:g}", "unit": unit, "limit": f"{lower:g}", "note": note},
        )
    if upper is not None and value > upper:
        return False, Message(
            "check.above_upper",
            {"value": f"{value:g}", "unit": unit, "limit": f"{upper:g}", "note": note},
        )
    return True, None


def _override(overrides: list[LimitOverride], kva: float | None) -> LimitOverride | None:
    """The most specific override for the transformer size (smallest threshold it is under)."""
    if kva is None:
        return None
    fitting = [o for o in overrides if kva <= o.transformer_kva_at_most]
    return min(fitting, key=lambda o: o.transformer_kva_at_most, default=None)


def _photo(item: PhotoItem, context: CheckContext) -> tuple[bool, Message | None]:
    have = context.photo_counts.get(item.kind, 0)
    if have >= item.min_count:
        return True, None
    return False, Message(
        "check.photos_short", {"have": have, "kind": item.kind, "required": item.min_count}
    )


def _barcode(context: CheckContext) -> tuple[bool, Message | None]:
    scanned = (context.scanned_barcode or "").strip()
    decoded = (context.decoded_barcode or "").strip()
    issued = (context.issued_meter_barcode or "").strip()
    if not scanned:
        return False, Message("check.no_scanned_barcode")
    if not decoded:
        return False, Message("check.barcode_unreadable")
    if scanned != decoded:
        return False, Message("check.barcode_differs", {"scanned": scanned, "decoded": decoded})
    if issued and scanned != issued:
        return False, Message("check.meter_not_issued", {"scanned": scanned, "issued": issued})
    return True, None


def _text(item: TextItem, value: str) -> tuple[bool, Message | None]:
    text = value.strip()
    if not text:
        return False, Message("check.empty")
    if item.pattern is not None and re.fullmatch(item.pattern, text) is None:
        return False, Message("check.wrong_form", {"value": repr(text)})
    return True, None


def _yes_no(value: ItemValue) -> dict[str, Any]:
    return Message("check.yes" if value is True else "check.no").as_dict()
