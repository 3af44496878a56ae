"""Every bundled YAML validates, and every kind of inconsistency is caught in a broken copy."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from standard_kits import (
    PACKAGE_ROOT,
    CatalogueError,
    UnknownCode,
    data_files,
    load_catalogue,
    read_catalogue,
)
from standard_kits.schemas import (
    BreakerMaterial,
    CableMaterial,
    CurrentTransformerMaterial,
    InsulatorMaterial,
    MeasurementItem,
)

Mutation = Callable[[dict[str, Any]], None]


def _copy_data(tmp_path: Path) -> Path:
    root = tmp_path / "kits"
    shutil.copytree(PACKAGE_ROOT / "data", root / "data")
    shutil.copytree(PACKAGE_ROOT / "cards", root / "cards")
    return root


def _broken(tmp_path: Path, relpath: str, mutate: Mutation) -> Path:
    root = _copy_data(tmp_path)
    path = root / relpath
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    mutate(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


def _problems(root: Path) -> str:
    with pytest.raises(CatalogueError) as info:
        read_catalogue(root)
    return "\n".join(info.value.problems)


def _kit(doc: dict[str, Any], code: str) -> dict[str, Any]:
    return next(k for k in doc["kits"] if k["code"] == code)


def _card_item(doc: dict[str, Any], code: str) -> dict[str, Any]:
    return next(i for i in doc["items"] if i["code"] == code)


# --- the bundled data -------------------------------------------------------------------------


def test_every_bundled_yaml_file_validates() -> None:
    files = data_files(PACKAGE_ROOT)
    catalogue = read_catalogue(PACKAGE_ROOT)
    assert all(f.exists() for f in files)
    # one card per file under cards/, nothing skipped
    assert len(catalogue.cards) == len(list((PACKAGE_ROOT / "cards").glob("*.yaml"))) == 3
    assert len(catalogue.materials) > 50


def test_load_catalogue_is_cached() -> None:
    assert load_catalogue() is load_catalogue()


def test_domain_kits_are_present_with_their_parts() -> None:
    cat = load_catalogue()
    assert [k.code for k in cat.connection_kits] == ["R1", "R2", "B1", "B2", "B3", "B4", "B5"]
    b4 = cat.get_connection_kit("B4")
    assert b4 is not None and b4.metering == "ct"
    ct = cat.material(b4.item_for("ct").material)  # type: ignore[union-attr]
    breaker = cat.material(b4.item_for("breaker").material)  # type: ignore[union-attr]
    cable = cat.material(b4.cable_item.material)
    assert isinstance(ct, CurrentTransformerMaterial) and ct.ratio == "400/5"
    assert isinstance(breaker, BreakerMaterial) and breaker.rating_a == 400
    assert isinstance(cable, CableMaterial)
    assert (cable.conductor, cable.cores, cable.section_mm2) == ("Cu", 4, 185)


@pytest.mark.parametrize(
    ("category", "phases", "kw", "code"),
    [
        ("residential", 1, 8, "R1"),
        ("residential", 1, 8.01, "R2"),
        ("residential", 1, 12, "R2"),
        ("residential", 1, 12.5, None),
        ("business", 3, 160, "B4"),
        ("business", 3, 160.5, "B5"),
        ("business", 3, 250, None),
        ("residential", 3, 15, "B1"),
    ],
)
def test_connection_kit_lookup_uses_half_open_bands(
    category: str, phases: int, kw: float, code: str | None
) -> None:
    kit = load_catalogue().connection_kit_for(category, phases, kw)
    assert (kit.code if kit else None) == code


def test_repair_kit_for_cplid_defect_replaces_the_insulator_string() -> None:
    cat = load_catalogue()
    kit = cat.repair_kit_for("defect")
    assert kit is not None and kit.requires_outage
    kinds = [cat.material(i.material) for i in kit.items]
    assert any(isinstance(m, InsulatorMaterial) for m in kinds)
    assert cat.repair_kit_for("bird_nest") is not None
    assert cat.repair_kit_for("no_such_defect") is None


def test_unknown_material_lookup_raises() -> None:
    with pytest.raises(UnknownCode, match="NOPE"):
        load_catalogue().material("NOPE")


def test_resistance_is_corrected_to_the_design_temperature() -> None:
    rules = load_catalogue().design_rules
    # IEC 60228: Al 240 mm² is 0.125 Ω/km at 20 °C; α = 0.00403/K; 70 °C by default
    assert rules.resistance_ohm_per_km("Al", 240) == pytest.approx(0.125 * (1 + 0.00403 * 50))
    assert rules.resistance_ohm_per_km("Cu", 16, temperature_c=20) == pytest.approx(1.15)


def test_every_unconfirmed_design_value_is_marked_as_a_default() -> None:
    rules = load_catalogue().design_rules
    assert rules.voltage_drop_budget_pct.default_to_replace
    assert rules.direct_meter_limit_a.mark == "S" and rules.direct_meter_limit_a.default_to_replace
    assert rules.terminal_voltage_limits[1].mark == "C"
    assert rules.terminal_voltage_limits[1].source


@pytest.mark.parametrize(
    ("category", "phases", "metering", "code"),
    [
        ("residential", 1, "direct", "LV-1P-RES"),
        ("business", 3, "direct", "LV-3P-DIRECT"),
        ("residential", 3, "direct", "LV-3P-DIRECT"),
        ("business", 3, "ct", "LV-3P-CT"),
        ("business", 1, "direct", None),
    ],
)
def test_card_in_force_by_installation_kind(
    category: str, phases: int, metering: str, code: str | None
) -> None:
    card = load_catalogue().card_in_force(
        category=category, phases=phases, metering=metering, on=dt.date(2026, 6, 1)
    )
    assert (card.code if card else None) == code


def test_cards_carry_the_domain_criteria() -> None:
    cat = load_catalogue()
    res = cat.get_card("LV-1P-RES", 1)
    ct = cat.get_card("LV-3P-CT", 1)
    assert res is not None and ct is not None
    items = {i.code: i for i in res.items}
    ins, earth, volts = (
        items["insulation_resistance"], items["earthing_resistance"], items["terminal_voltage"]
    )
    assert isinstance(ins, MeasurementItem) and ins.lower == 0.5
    assert isinstance(earth, MeasurementItem) and earth.upper == 4
    assert earth.overrides[0].transformer_kva_at_most == 100 and earth.overrides[0].upper == 10
    assert isinstance(volts, MeasurementItem) and (volts.lower, volts.upper) == (198, 235.4)
    assert volts.phase == "supply_on" and ins.phase == "before_energising"
    ct_codes = {i.code for i in ct.items}
    assert {"phase_sequence", "ct_primary", "terminal_voltage_l1_l2", "meter_barcode"} <= ct_codes
    assert {"photo_seal", "photo_barcode", "seal_numbers"} <= ct_codes


def test_a_new_card_version_takes_over_from_its_valid_from_date(tmp_path: Path) -> None:
    root = _copy_data(tmp_path)
    doc = yaml.safe_load((root / "cards" / "lv-3p-ct.yaml").read_text(encoding="utf-8"))
    doc["version"], doc["valid_from"] = 2, dt.date(2026, 7, 1)
    (root / "cards" / "lv-3p-ct-v2.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8"
    )
    cat = read_catalogue(root)
    before = cat.card_in_force(category="business", phases=3, metering="ct", on=dt.date(2026, 6, 30))
    after = cat.card_in_force(category="business", phases=3, metering="ct", on=dt.date(2026, 7, 1))
    assert before is not None and before.version == 1
    assert after is not None and after.version == 2


# --- broken copies: each inconsistency is caught ----------------------------------------------


def _unknown_material(doc: dict[str, Any]) -> None:
    _kit(doc, "B2")["items"][0]["material"] = "MTR-DOES-NOT-EXIST"


def _overlap(doc: dict[str, Any]) -> None:
    _kit(doc, "B3")["capacity"]["above_kw"] = 45


def _two_core_on_three_phase(doc: dict[str, Any]) -> None:
    _kit(doc, "B1")["per_metre"][0]["material"] = "CAB-CU-2X16"


def _missing_breaker(doc: dict[str, Any]) -> None:
    kit = _kit(doc, "R1")
    kit["items"] = [i for i in kit["items"] if i.get("role") != "breaker"]


def _no_ampacity(doc: dict[str, Any]) -> None:
    del doc["ampacity"][0]["values"]["Cu"][50]


def _no_resistance(doc: dict[str, Any]) -> None:
    del doc["conductor_resistance_20c"]["values"]["Al"][240]


def _unmarked_default(doc: dict[str, Any]) -> None:
    doc["voltage_drop_budget_pct"]["default_to_replace"] = False


def _no_source_no_default(doc: dict[str, Any]) -> None:
    doc["nominal_voltage_v"][1].pop("source")


def _duplicate_material(doc: dict[str, Any]) -> None:
    doc["materials"].append(dict(doc["materials"][0]))


def _no_defect_kit(doc: dict[str, Any]) -> None:
    for kit in doc["repair_kits"]:
        kit["defect_classes"] = [c for c in kit["defect_classes"] if c != "defect"]


def _repair_unknown_material(doc: dict[str, Any]) -> None:
    doc["repair_kits"][0]["items"][0]["material"] = "INS-NOPE"


def _limits_reversed(doc: dict[str, Any]) -> None:
    item = _card_item(doc, "meter_height")
    item["lower"], item["upper"] = 1.8, 0.8


def _measurement_without_limits(doc: dict[str, Any]) -> None:
    item = _card_item(doc, "insulation_resistance")
    del item["lower"]


def _bad_choice(doc: dict[str, Any]) -> None:
    _card_item(doc, "phase_sequence")["pass_options"] = ["clockwise"]


def _duplicate_item(doc: dict[str, Any]) -> None:
    doc["items"].append(dict(doc["items"][0]))


def _unknown_photo_kind(doc: dict[str, Any]) -> None:
    _card_item(doc, "photo_site")["kind"] = "selfie"


def _unknown_item_type(doc: dict[str, Any]) -> None:
    _card_item(doc, "wiring_correct")["type"] = "maybe"


def _bad_phase(doc: dict[str, Any]) -> None:
    _card_item(doc, "wiring_correct")["phase"] = "after_lunch"


def _bad_pattern(doc: dict[str, Any]) -> None:
    _card_item(doc, "seal_numbers")["pattern"] = "([unclosed"


def _overlapping_card(doc: dict[str, Any]) -> None:
    doc["applicability"]["metering"] = ["direct", "ct"]


@pytest.mark.parametrize(
    ("relpath", "mutate", "expected"),
    [
        ("data/connection_kits.yaml", _unknown_material, "unknown material code MTR-DOES-NOT-EXIST"),
        ("data/connection_kits.yaml", _overlap, "kits B2 and B3 overlap for business 3-phase"),
        ("data/connection_kits.yaml", _two_core_on_three_phase, "2-core cable on a 3-phase kit"),
        ("data/connection_kits.yaml", _missing_breaker, "exactly one item with role breaker"),
        ("data/design_rules.yaml", _no_ampacity, "CAB-CU-4X50 (Cu 50 mm²): no ampacity for laying method E"),
        ("data/design_rules.yaml", _no_resistance, "CAB-AL-4X240 (Al 240 mm²): no resistance"),
        ("data/design_rules.yaml", _unmarked_default, "set default_to_replace: true"),
        ("data/design_rules.yaml", _no_source_no_default, "needs its source or default_to_replace"),
        ("data/materials.yaml", _duplicate_material, "duplicate material code: CAB-CU-2X10"),
        ("data/repair_kits.yaml", _no_defect_kit, "no repair kit for defect class 'defect'"),
        ("data/repair_kits.yaml", _repair_unknown_material, "unknown material code INS-NOPE"),
        ("cards/lv-1p-residential.yaml", _limits_reversed, "lower limit 1.8 > upper 0.8"),
        ("cards/lv-1p-residential.yaml", _measurement_without_limits, "needs a lower/upper limit"),
        ("cards/lv-3p-ct.yaml", _bad_choice, "pass options ['clockwise'] are not options"),
        ("cards/lv-3p-ct.yaml", _duplicate_item, "duplicate item code in card LV-3P-CT"),
        ("cards/lv-3p-ct.yaml", _unknown_photo_kind, "photo.kind"),
        ("cards/lv-3p-ct.yaml", _unknown_item_type, "does not match any of the expected tags"),
        ("cards/lv-3p-ct.yaml", _bad_phase, "yes_no.phase"),
        ("cards/lv-3p-ct.yaml", _bad_pattern, "seal_numbers: bad pattern"),
        ("cards/lv-3p-ct.yaml", _overlapping_card, "both apply to"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_inconsistency_is_caught(
    tmp_path: Path, relpath: str, mutate: Mutation, expected: str
) -> None:
    root = _broken(tmp_path, relpath, mutate)
    assert expected in _problems(root)


def test_a_card_version_must_start_later_than_the_previous_one(tmp_path: Path) -> None:
    root = _copy_data(tmp_path)
    doc = yaml.safe_load((root / "cards" / "lv-3p-ct.yaml").read_text(encoding="utf-8"))
    doc["version"] = 2  # same valid_from as version 1
    (root / "cards" / "v2.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    assert "version 2 must be valid from a later date than version 1" in _problems(root)


def test_invalid_yaml_and_missing_files_are_reported_by_name(tmp_path: Path) -> None:
    root = _copy_data(tmp_path)
    (root / "data" / "repair_kits.yaml").write_text("repair_kits: [unclosed", encoding="utf-8")
    (root / "data" / "materials.yaml").unlink()
    problems = _problems(root)
    assert "repair_kits.yaml: not valid YAML" in problems
    assert "materials.yaml: missing" in problems


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    root = _broken(tmp_path, "data/connection_kits.yaml", lambda d: (_unknown_material(d), _overlap(d)))
    problems = _problems(root)
    assert "unknown material code" in problems and "overlap" in problems


def test_order_categories_map_to_kit_categories() -> None:
    cat = load_catalogue()
    assert cat.kit_category("small_micro_enterprise") == "business"
    assert cat.kit_category("other_low_voltage") == "business"
    assert cat.kit_category("residential") == "residential"
    kit = cat.connection_kit_for("small_micro_enterprise", 3, 50)
    assert kit is not None and kit.code == "B2"
    card = cat.card_in_force(category="other_low_voltage", phases=3, metering="ct",
                             on=dt.date(2026, 6, 1))
    assert card is not None and card.code == "LV-3P-CT"
    assert cat.connection_kit_for("street_lighting", 1, 5) is None
