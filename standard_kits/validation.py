"""Consistency checks that span files: each returns human-readable problems, empty when sound."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations, pairwise

from standard_kits.catalogue import Catalogue
from standard_kits.schemas import (
    BreakerMaterial,
    CableMaterial,
    ConnectionKit,
    CurrentTransformerMaterial,
    KitRole,
    Material,
    MeterBoxMaterial,
    MeterMaterial,
)

_ROLE_KIND: dict[KitRole, type[Material]] = {
    "cable": CableMaterial,
    "breaker": BreakerMaterial,
    "meter": MeterMaterial,
    "ct": CurrentTransformerMaterial,
    "meter_box": MeterBoxMaterial,
}


class CatalogueError(ValueError):
    """The standard-kit data is unreadable or inconsistent; ``problems`` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("standard kit data is inconsistent:\n- " + "\n- ".join(problems))


def check_catalogue(cat: Catalogue) -> list[str]:
    """Every cross-file problem in ``cat``."""
    return [
        *_check_connection_kits(cat),
        *_check_kit_ranges(cat),
        *_check_repair_kits(cat),
        *_check_cable_tables(cat),
        *_check_cards(cat),
    ]


def _check_connection_kits(cat: Catalogue) -> list[str]:
    problems: list[str] = []
    for kit in cat.connection_kits:
        lines = [(i.material, i.role) for i in kit.items]
        lines += [(i.material, i.role) for i in kit.per_metre]
        for code, role in lines:
            material = cat.get_material(code)
            if material is None:
                problems.append(f"kit {kit.code}: unknown material code {code}")
                continue
            expected = _ROLE_KIND.get(role)
            if expected is not None and not isinstance(material, expected):
                problems.append(
                    f"kit {kit.code}: material {code} is a {material.kind}, not a {role}"
                )
        problems += _check_kit_fit(cat, kit)
    return problems


def _check_kit_fit(cat: Catalogue, kit: ConnectionKit) -> list[str]:
    """The kit's parts must suit its phases and metering (no 2-core cable on a 3-phase kit)."""
    problems: list[str] = []
    cable = cat.get_material(kit.cable_item.material)
    if isinstance(cable, CableMaterial):
        wanted_cores = {2} if kit.phases == 1 else {4, 5}
        if cable.cores not in wanted_cores:
            problems.append(f"kit {kit.code}: {cable.cores}-core cable on a {kit.phases}-phase kit")
    meter_item = kit.item_for("meter")
    meter = cat.get_material(meter_item.material) if meter_item else None
    if isinstance(meter, MeterMaterial) and (
        meter.phases != kit.phases or meter.connection != kit.metering
    ):
        problems.append(
            f"kit {kit.code}: meter {meter.code} is {meter.phases}-phase {meter.connection}, "
            f"kit is {kit.phases}-phase {kit.metering}"
        )
    breaker_item = kit.item_for("breaker")
    breaker = cat.get_material(breaker_item.material) if breaker_item else None
    if isinstance(breaker, BreakerMaterial):
        wanted_poles = {2} if kit.phases == 1 else {3, 4}
        if breaker.poles not in wanted_poles:
            problems.append(
                f"kit {kit.code}: {breaker.poles}-pole breaker on a {kit.phases}-phase kit"
            )
    box_item = kit.item_for("meter_box")
    box = cat.get_material(box_item.material) if box_item else None
    if isinstance(box, MeterBoxMaterial):
        wanted_box = (
            "single_phase" if kit.phases == 1
            else "three_phase_ct" if kit.metering == "ct" else "three_phase_direct"
        )
        if box.box_type != wanted_box:
            problems.append(
                f"kit {kit.code}: meter box {box.code} is {box.box_type}, needs {wanted_box}"
            )
    return problems


def _check_kit_ranges(cat: Catalogue) -> list[str]:
    groups: dict[tuple[str, int], list[ConnectionKit]] = defaultdict(list)
    for kit in cat.connection_kits:
        for category in kit.categories:
            groups[(category, kit.phases)].append(kit)
    problems = []
    for (cat_name, phases), kits in sorted(groups.items()):
        for a, b in combinations(kits, 2):
            if a.capacity.overlaps(b.capacity):
                problems.append(
                    f"kits {a.code} and {b.code} overlap for {cat_name} {phases}-phase: "
                    f"({a.capacity.above_kw}, {a.capacity.up_to_kw}] and "
                    f"({b.capacity.above_kw}, {b.capacity.up_to_kw}] kW"
                )
    return problems


def _check_repair_kits(cat: Catalogue) -> list[str]:
    problems = [
        f"repair kit {kit.code}: unknown material code {item.material}"
        for kit in cat.repair_kits
        for item in kit.items
        if cat.get_material(item.material) is None
    ]
    # `defect` is the only defect class the bundled CPLID detector reports today
    if cat.repair_kit_for("defect") is None:
        problems.append("no repair kit for defect class 'defect' (CPLID missing insulator cap)")
    return problems


def _check_cable_tables(cat: Catalogue) -> list[str]:
    rules = cat.design_rules
    problems: list[str] = []
    for cable in cat.cables():
        key = f"cable {cable.code} ({cable.conductor} {cable.section_mm2:g} mm²)"
        if cable.section_mm2 not in rules.conductor_resistance_20c.values.get(cable.conductor, {}):
            problems.append(f"{key}: no resistance at 20 °C")
        if cable.section_mm2 not in rules.reactance.values:
            problems.append(f"{key}: no reactance")
        for table in rules.ampacity:
            if cable.section_mm2 not in table.values.get(cable.conductor, {}):
                problems.append(f"{key}: no ampacity for laying method {table.laying_method}")
    for conductor in rules.cable_material_preference.value:
        if conductor not in rules.temperature_coefficient_per_k:
            problems.append(f"no temperature coefficient for {conductor}")
    return problems


def _check_cards(cat: Catalogue) -> list[str]:
    problems: list[str] = []
    seen: set[tuple[str, int]] = set()
    by_code: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for card in cat.cards:
        if (card.code, card.version) in seen:
            problems.append(f"card {card.code} version {card.version} defined twice")
        seen.add((card.code, card.version))
        by_code[card.code].append((card.version, card.valid_from.isoformat()))
    for code, versions in by_code.items():
        ordered = sorted(versions)
        for (v1, d1), (v2, d2) in pairwise(ordered):
            if d2 <= d1:
                problems.append(
                    f"card {code}: version {v2} must be valid from a later date than version {v1}"
                )
    # two different cards covering the same installation would make the choice arbitrary
    latest = {c.code: c for c in sorted(cat.cards, key=lambda c: c.version)}
    for a, b in combinations(latest.values(), 2):
        shared = [
            (cat_, ph, me)
            for cat_ in a.applicability.categories for ph in a.applicability.phases
            for me in a.applicability.metering
            if b.applicability.covers(cat_, ph, me)
        ]
        if shared:
            problems.append(f"cards {a.code} and {b.code} both apply to {shared[0]}")
    for kit in cat.connection_kits:
        for category in kit.categories:
            if not any(
                c.applicability.covers(category, kit.phases, kit.metering) for c in cat.cards
            ):
                problems.append(
                    f"kit {kit.code}: no checklist card for {category} {kit.phases}-phase "
                    f"{kit.metering} metering"
                )
    return problems
