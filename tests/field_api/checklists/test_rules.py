"""Pure card evaluation against the bundled cards: every item type, limits quoted, criticality."""

from __future__ import annotations

import dataclasses

import pytest

from field_api.checklists.rules import (
    CheckContext,
    ChecklistInputError,
    ItemValue,
    evaluate_card,
    evaluate_phases,
    evidence_pending,
    missing_evidence,
)
from standard_kits import load_catalogue
from standard_kits.schemas import ChecklistCard

ALL_PHOTOS = CheckContext.count_photos(
    ["site", "meter_box", "wiring", "seal", "barcode", "meter_after", "site"]
)
METER = "3340101234567890123456"


def _card(code: str) -> ChecklistCard:
    card = load_catalogue().get_card(code, 1)
    assert card is not None
    return card


def _context(**changes: object) -> CheckContext:
    base = CheckContext(
        scheme_cable_section_mm2=10, scheme_breaker_rating_a=63, scheme_ct_primary_a=400,
        scanned_barcode=METER, decoded_barcode=METER, issued_meter_barcode=METER,
        photo_counts=ALL_PHOTOS, transformer_rated_kva=400,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _good_residential() -> dict[str, ItemValue]:
    return {
        "insulation_resistance": 20.0, "earthing_resistance": 3.2, "meter_height": 1.5,
        "wiring_correct": True, "cable_section": 10, "breaker_rating": 63,
        "seal_numbers": "SG2026-0001, SG2026-0002", "terminal_voltage": 226.0,
        "rcd_trip_time": 28.0, "meter_registering": True,
    }


def _item(result: object, code: str) -> object:
    return next(i for i in result.items if i.code == code)  # type: ignore[attr-defined]


def test_a_good_residential_installation_passes_every_item() -> None:
    result = evaluate_card(_card("LV-1P-RES"), _good_residential(), _context())
    assert result.passed and result.status == "passed"
    assert all(i.passed and i.reason is None for i in result.items)
    assert len(result.items) == len(_card("LV-1P-RES").items)


@pytest.mark.parametrize(
    ("code", "value", "reason"),
    [
        ("insulation_resistance", 0.3, "0.3 MΩ below the lower limit 0.5 MΩ"),
        ("earthing_resistance", 4.5, "4.5 Ω above the upper limit 4 Ω"),
        ("terminal_voltage", 240.0, "240 V above the upper limit 235.4 V"),
        ("terminal_voltage", 190.0, "190 V below the lower limit 198 V"),
        ("cable_section", 6, "6 mm² differs from the scheme's 10 mm²"),
        ("breaker_rating", 40, "40 A differs from the scheme's 63 A"),
        ("wiring_correct", False, "answered no, yes required"),
        ("seal_numbers", "none", "'none' is not in the required form"),
        ("rcd_trip_time", 150.0, "150 ms above the upper limit 100 ms"),
    ],
)
def test_a_critical_failure_fails_the_card_and_quotes_the_limit(
    code: str, value: ItemValue, reason: str
) -> None:
    values = _good_residential() | {code: value}
    result = evaluate_card(_card("LV-1P-RES"), values, _context())
    item = _item(result, code)
    assert not item.passed and item.reason == reason  # type: ignore[attr-defined]
    assert result.status == "failed"
    assert [i.code for i in result.failed_critical] == [code]


def test_limits_are_inclusive() -> None:
    values = _good_residential() | {"terminal_voltage": 235.4, "meter_height": 0.8,
                                    "insulation_resistance": 0.5, "earthing_resistance": 4.0}
    assert evaluate_card(_card("LV-1P-RES"), values, _context()).passed


def test_a_non_critical_failure_leaves_a_remark_but_the_card_passes() -> None:
    values = _good_residential() | {"meter_height": 2.1}
    result = evaluate_card(_card("LV-1P-RES"), values, _context())
    assert result.passed and result.status == "passed_with_remarks"
    assert [(i.code, i.reason) for i in result.remarks] == [
        ("meter_height", "2.1 m above the upper limit 1.8 m")
    ]


def test_earthing_limit_is_relaxed_for_small_transformers() -> None:
    values = _good_residential() | {"earthing_resistance": 8.0}
    small = evaluate_card(_card("LV-1P-RES"), values, _context(transformer_rated_kva=100))
    large = evaluate_card(_card("LV-1P-RES"), values, _context(transformer_rated_kva=160))
    assert _item(small, "earthing_resistance").passed  # type: ignore[attr-defined]
    assert not _item(large, "earthing_resistance").passed  # type: ignore[attr-defined]
    too_high = evaluate_card(_card("LV-1P-RES"), values | {"earthing_resistance": 12.0},
                             _context(transformer_rated_kva=100))
    assert _item(too_high, "earthing_resistance").reason == (  # type: ignore[attr-defined]
        "12 Ω above the upper limit 10 Ω (limit for transformers ≤ 100 kVA)"
    )


def test_missing_values_fail_as_not_submitted() -> None:
    values = _good_residential()
    del values["insulation_resistance"]
    result = evaluate_card(_card("LV-1P-RES"), values, _context())
    item = _item(result, "insulation_resistance")
    assert not item.passed and item.reason == "not submitted"  # type: ignore[attr-defined]
    assert not result.passed


def test_photos_are_judged_from_the_evidence() -> None:
    photos = {k: v for k, v in ALL_PHOTOS.items() if k != "seal"}
    result = evaluate_card(_card("LV-1P-RES"), _good_residential(), _context(photo_counts=photos))
    assert [(i.code, i.reason) for i in result.failed_critical] == [
        ("photo_seal", "0 photo(s) of kind seal, 1 required")
    ]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"scanned_barcode": None}, "no scanned meter barcode"),
        ({"decoded_barcode": None}, "the barcode photo could not be decoded"),
        ({"decoded_barcode": "3340101234567890123457"},
         f"scanned {METER} does not match the photo's 3340101234567890123457"),
        ({"issued_meter_barcode": "3340109999999999999999"},
         f"scanned meter {METER} is not the issued meter 3340109999999999999999"),
    ],
)
def test_barcode_must_match_the_photo_and_the_issued_meter(
    changes: dict[str, object], reason: str
) -> None:
    result = evaluate_card(_card("LV-1P-RES"), _good_residential(), _context(**changes))
    item = _item(result, "meter_barcode")
    assert not item.passed and item.reason == reason  # type: ignore[attr-defined]


def test_reference_items_fail_without_a_scheme() -> None:
    result = evaluate_card(_card("LV-1P-RES"), _good_residential(),
                           _context(scheme_cable_section_mm2=None))
    assert _item(result, "cable_section").reason == (  # type: ignore[attr-defined]
        "no scheme figure to compare with (scheme_cable_section_mm2)"
    )


def _good_ct() -> dict[str, ItemValue]:
    return {
        "insulation_resistance": 50.0, "earthing_resistance": 2.0, "meter_height": 1.6,
        "wiring_correct": True, "cable_section": 185, "breaker_rating": 400, "ct_primary": 400,
        "ct_current_wire_section": 4.0, "ct_voltage_wire_section": 2.5,
        "seal_numbers": "A1234;B5678;C9012", "terminal_voltage_l1_l2": 388.0,
        "terminal_voltage_l2_l3": 391.5, "terminal_voltage_l3_l1": 386.2,
        "phase_sequence": "positive", "meter_registering": True,
    }


def test_phases_are_evaluated_separately() -> None:
    card = _card("LV-3P-CT")
    context = _context(scheme_cable_section_mm2=185, scheme_breaker_rating_a=400)
    values = _good_ct() | {"phase_sequence": "negative"}
    results = evaluate_phases(card, values, context)
    before, supply_on = results["before_energising"], results["supply_on"]
    assert before.passed and before.phase == "before_energising"
    assert not supply_on.passed
    assert [(i.code, i.reason) for i in supply_on.failed_critical] == [
        ("phase_sequence", "'negative' is not acceptable (positive)")
    ]
    assert {i.phase for i in before.items} == {"before_energising"}
    assert len(before.items) + len(supply_on.items) == len(card.items)


def test_one_phase_can_be_evaluated_before_the_other_is_measured() -> None:
    card = _card("LV-3P-CT")
    before_codes = {i.code for i in card.items_in("before_energising")}
    values = {k: v for k, v in _good_ct().items() if k in before_codes}
    context = _context(scheme_cable_section_mm2=185, scheme_breaker_rating_a=400)
    result = evaluate_card(card, values, context, phase="before_energising")
    assert result.passed and result.card_code == "LV-3P-CT" and result.card_version == 1


def test_ct_wiring_section_quotes_its_limit() -> None:
    values = _good_ct() | {"ct_current_wire_section": 1.5}
    context = _context(scheme_cable_section_mm2=185, scheme_breaker_rating_a=400)
    result = evaluate_card(_card("LV-3P-CT"), values, context, phase="before_energising")
    assert _item(result, "ct_current_wire_section").reason == (  # type: ignore[attr-defined]
        "1.5 mm² below the lower limit 2.5 mm²"
    )


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"no_such_item": 1}, "no_such_item: not an item of card LV-1P-RES"),
        ({"insulation_resistance": "high"}, "insulation_resistance: expected a number in MΩ"),
        ({"insulation_resistance": True}, "insulation_resistance: expected a number in MΩ"),
        ({"insulation_resistance": float("inf")}, "expected a finite number"),
        ({"wiring_correct": "yes"}, "wiring_correct: expected true or false"),
        ({"seal_numbers": 1234}, "seal_numbers: expected text"),
        ({"photo_site": True}, "photo_site: judged from the photos"),
        ({"meter_barcode": METER}, "meter_barcode: judged from the photos"),
    ],
)
def test_values_of_the_wrong_kind_are_input_errors(
    values: dict[str, ItemValue], problem: str
) -> None:
    with pytest.raises(ChecklistInputError) as info:
        evaluate_card(_card("LV-1P-RES"), _good_residential() | values, _context())
    assert any(problem in p for p in info.value.problems)


def test_a_choice_outside_its_options_is_an_input_error() -> None:
    with pytest.raises(ChecklistInputError, match="expected one of positive, negative"):
        evaluate_card(_card("LV-3P-CT"), {"phase_sequence": "clockwise"}, _context())


def test_values_of_the_other_phase_do_not_count_but_are_still_checked() -> None:
    card = _card("LV-1P-RES")
    bad_voltage = _good_residential() | {"terminal_voltage": 100.0}
    before = evaluate_card(card, bad_voltage, _context(), phase="before_energising")
    assert before.passed and "terminal_voltage" not in {i.code for i in before.items}
    with pytest.raises(ChecklistInputError, match="terminal_voltage: expected a number"):
        evaluate_card(card, _good_residential() | {"terminal_voltage": "220"}, _context(),
                      phase="before_energising")


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"earthing_resistance": -2.0}, "earthing_resistance: -2 Ω is impossible"),
        ({"insulation_resistance": -0.1}, "insulation_resistance: -0.1 MΩ is impossible"),
        ({"terminal_voltage": 1200.0}, "between 0 and 1000 V"),
        ({"terminal_voltage": -5}, "terminal_voltage: -5 V is impossible"),
        ({"meter_height": -1.0}, "a length or height cannot be negative"),
        ({"rcd_trip_time": -3}, "a time cannot be negative"),
    ],
)
def test_physically_impossible_readings_are_input_errors(
    values: dict[str, ItemValue], problem: str
) -> None:
    with pytest.raises(ChecklistInputError) as info:
        evaluate_card(_card("LV-1P-RES"), _good_residential() | values, _context())
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_possible_but_failing_readings_are_failed_items_not_input_errors() -> None:
    values = _good_residential() | {"earthing_resistance": 0.0, "terminal_voltage": 1000.0}
    result = evaluate_card(_card("LV-1P-RES"), values, _context())
    assert _item(result, "earthing_resistance").passed  # type: ignore[attr-defined]
    assert not _item(result, "terminal_voltage").passed  # type: ignore[attr-defined]


def test_missing_evidence_names_each_photo_kind_and_the_barcode() -> None:
    card = _card("LV-1P-RES")
    assert missing_evidence(card, _context(), phase="before_energising") == []
    photos = {k: v for k, v in ALL_PHOTOS.items() if k != "seal"}
    missing = missing_evidence(
        card, _context(photo_counts=photos, scanned_barcode=None), phase="before_energising"
    )
    english = [m.english for m in missing]
    assert any(m.startswith("photo_seal: 1 more photo(s) of kind seal") for m in english)
    assert any(m.startswith("meter_barcode: a barcode photo") for m in english)
    assert "photo_seal：还需 1 张 seal 照片（已有 0 张，需要 1 张）" in [
        m.render("zh-CN") for m in missing
    ]
    assert missing_evidence(card, _context(barcode_analysis_pending=True)) == []
    pending = evidence_pending(card, _context(barcode_analysis_pending=True))
    assert pending == ["meter_barcode: the barcode photo is not decoded yet"]
    assert evidence_pending(card, _context()) == []
