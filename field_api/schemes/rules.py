"""The supply-scheme engine (供电方案): pure functions over plain values, no web or database.

Given a connection request (category, phases, capacity, the customer's position) and the
low-voltage network around it, :func:`design_scheme` chooses the supply point and kit:

1. the standard kit whose capacity band holds the request, its load current I = P/(U·cosφ)
   (single-phase) or P/(√3·U·cosφ) (three-phase), and direct or CT metering by current;
2. a breaker of at least the load current (the kit's when it fits);
3. the nearest transformer within the supply radius with enough spare kVA;
4. the route length along a given LV line, or the straight line × a detour factor;
5. the cable: the kit's when its ampacity covers the breaker (Ib ≤ In ≤ Iz) and its voltage
   drop ΔU% = k·I·L·(R cosφ + X sinφ)/U·100 (k = √3 three-phase, 2 single-phase) stays within
   the budget, otherwise a larger section;
6. the bill of materials for the route and the estimated terminal voltage.

When nothing passes, the answer names every rule that failed and, where the grid itself is short
(no transformer in reach, no spare capacity, a route too long for any cable), proposes the white
list (白名单: register, reinforce the grid, then connect).

Distances and routes come from :mod:`field_api.network.geo`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, TypeVar

from field_api.messages import Message
from field_api.network.geo import (
    LvLine,
    Network,
    SchemeInputError,
    SupplyTransformer,
    check_lon_lat,
)
from standard_kits import Catalogue
from standard_kits.schemas import (
    BreakerMaterial,
    ConnectionKit,
    CurrentTransformerMaterial,
    KitRole,
    MeterMaterial,
)

__all__ = [  # the geo names are re-exported so callers need one import
    "BomLine", "CableCheck", "CableOption", "EngineSettings", "LvLine", "Network", "RuleFailure",
    "Scheme", "SchemeAnswer", "SchemeInputError", "SchemeRequest", "SupplyTransformer",
    "WhiteListProposal", "bill_of_materials", "cable_options", "check_cable", "design_scheme",
    "load_current_a", "max_length_m", "settings_from", "voltage_drop_pct",
]

_Mat = TypeVar("_Mat", BreakerMaterial, MeterMaterial, CurrentTransformerMaterial)

RuleName = Literal[
    "no_standard_kit",
    "direct_meter_limit",
    "metering_equipment",
    "breaker",
    "no_transformer_in_reach",
    "transformer_capacity",
    "ampacity",
    "voltage_drop",
    "terminal_voltage",
]


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SchemeRequest:
    """What the crew asks for at the customer's door."""

    category: str
    phases: int
    capacity_kw: float
    lon: float
    lat: float
    laying_method: str | None = None
    preferred_cable: str | None = None
    """A cable the crew proposes (what is on the truck); checked first, replaced if it fails."""


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The design values the engine uses; :func:`settings_from` reads them from the catalogue."""

    power_factor: dict[str, float]
    voltage_drop_budget_pct: float
    nominal_voltage_v: dict[int, float]
    terminal_voltage_limits_v: dict[int, tuple[float, float]]
    direct_meter_limit_a: float
    detour_factor: float
    max_supply_radius_m: float
    max_service_drop_m: float
    transformer_max_loading_pct: float
    laying_method: str
    cable_material_preference: tuple[str, ...]


def settings_from(catalogue: Catalogue) -> EngineSettings:
    """Engine settings from the catalogue's design rules (district overrides go on top)."""
    r = catalogue.design_rules
    return EngineSettings(
        power_factor={k: v.value for k, v in r.power_factor.items()},
        voltage_drop_budget_pct=r.voltage_drop_budget_pct.value,
        nominal_voltage_v={int(k): v.value for k, v in r.nominal_voltage_v.items()},
        terminal_voltage_limits_v={
            int(k): (v.lower_v, v.upper_v) for k, v in r.terminal_voltage_limits.items()
        },
        direct_meter_limit_a=r.direct_meter_limit_a.value,
        detour_factor=r.detour_factor.value,
        max_supply_radius_m=r.max_supply_radius_m.value,
        max_service_drop_m=r.max_service_drop_m.value,
        transformer_max_loading_pct=r.transformer_max_loading_pct.value,
        laying_method=r.default_laying_method.value,
        cable_material_preference=tuple(r.cable_material_preference.value),
    )


@dataclass(frozen=True, slots=True)
class CableOption:
    """A cable type with its electrical figures at the design temperature and laying method."""

    code: str
    conductor: str
    cores: int
    section_mm2: float
    ampacity_a: float
    r_ohm_per_km: float
    x_ohm_per_km: float


def cable_options(catalogue: Catalogue, *, phases: int, laying_method: str) -> list[CableOption]:
    """Catalogue cables for ``phases`` with R, X and ampacity, in preference order.

    Preference: the design rules' material order, then the smallest section first.
    """
    return list(_cable_options(catalogue, phases, laying_method))


@lru_cache(maxsize=32)
def _cable_options(
    catalogue: Catalogue, phases: int, laying_method: str
) -> tuple[CableOption, ...]:
    # the catalogue is immutable and hashed by identity, so the figures are computed once
    rules = catalogue.design_rules
    table = rules.ampacity_table(laying_method)
    if table is None:
        raise SchemeInputError(f"unknown laying method {laying_method!r}")
    cores = 2 if phases == 1 else 4
    preference: list[str] = list(rules.cable_material_preference.value)
    options = [
        CableOption(
            code=c.code, conductor=c.conductor, cores=c.cores, section_mm2=c.section_mm2,
            ampacity_a=table.values[c.conductor][c.section_mm2],
            r_ohm_per_km=rules.resistance_ohm_per_km(c.conductor, c.section_mm2),
            x_ohm_per_km=rules.reactance_ohm_per_km(c.section_mm2),
        )
        for c in catalogue.cables(cores=cores)
        if c.conductor in preference
    ]
    return tuple(sorted(options, key=lambda o: (preference.index(o.conductor), o.section_mm2)))


# --- electrical formulas ----------------------------------------------------------------------


def load_current_a(capacity_kw: float, *, phases: int, voltage_v: float, cos_phi: float) -> float:
    """I = P/(U·cosφ) single-phase, P/(√3·U·cosφ) three-phase (U line-to-line)."""
    k = 1.0 if phases == 1 else math.sqrt(3)
    return capacity_kw * 1000.0 / (k * voltage_v * cos_phi)


def voltage_drop_pct(
    *, current_a: float, length_m: float, r_ohm_per_km: float, x_ohm_per_km: float,
    cos_phi: float, phases: int, voltage_v: float,
) -> float:
    """ΔU % = k·I·L·(R cosφ + X sinφ)/U·100; k = √3 three-phase, 2 single-phase (go and return)."""
    k = 2.0 if phases == 1 else math.sqrt(3)
    sin_phi = math.sqrt(max(0.0, 1.0 - cos_phi * cos_phi))
    length_km = length_m / 1000.0
    drop_v = k * current_a * length_km * (r_ohm_per_km * cos_phi + x_ohm_per_km * sin_phi)
    return 100.0 * drop_v / voltage_v


def max_length_m(
    *, current_a: float, r_ohm_per_km: float, x_ohm_per_km: float, cos_phi: float,
    phases: int, voltage_v: float, budget_pct: float,
) -> float:
    """The longest route on which a cable stays within the voltage-drop budget."""
    per_m = voltage_drop_pct(
        current_a=current_a, length_m=1.0, r_ohm_per_km=r_ohm_per_km,
        x_ohm_per_km=x_ohm_per_km, cos_phi=cos_phi, phases=phases, voltage_v=voltage_v,
    )
    return budget_pct / per_m if per_m > 0 else math.inf


# --- outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CableCheck:
    """One cable tried for a route: its figures and whether it passed."""

    code: str
    conductor: str
    section_mm2: float
    ampacity_a: float
    r_ohm_per_km: float
    x_ohm_per_km: float
    voltage_drop_pct: float
    max_length_m: float
    passed: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class BomLine:
    """One line of the bill of materials."""

    material_code: str
    name_zh: str
    name_en: str
    unit: str
    quantity: float
    role: str


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """A rule that refused the request, optionally for one transformer.

    ``code`` and ``params`` name the text for people in :mod:`field_api.messages`
    (``scheme_failure.<what>``); ``detail`` is the same in English (logs, older clients).
    """

    rule: RuleName
    detail: str
    transformer_id: str | None = None
    code: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WhiteListProposal:
    """Register the request on the white list (白名单) until the grid is reinforced."""

    reason: RuleName
    detail: str
    code: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scheme:
    """A supply scheme that meets every rule, with every figure it was computed from."""

    kit_code: str
    transformer_id: str
    transformer_rated_kva: float
    transformer_spare_kva_before: float
    transformer_spare_kva_after: float
    distance_m: float
    route_length_m: float
    route_method: Literal["along_line", "straight_line"]
    detour_factor: float | None
    laying_method: str
    cable: CableCheck
    breaker_code: str
    breaker_rating_a: float
    metering: Literal["direct", "ct"]
    meter_code: str
    ct_code: str | None
    ct_primary_a: float | None
    voltage_drop_budget_pct: float
    nominal_voltage_v: float
    terminal_voltage_v: float
    terminal_voltage_limits_v: tuple[float, float]
    bill_of_materials: tuple[BomLine, ...]
    cables_considered: tuple[CableCheck, ...]


@dataclass(frozen=True, slots=True)
class SchemeAnswer:
    """The engine's answer: a scheme, or the failed rules with proposals."""

    category: str
    phases: int
    capacity_kw: float
    cos_phi: float
    load_current_a: float
    load_kva: float
    kit_code: str | None
    scheme: Scheme | None
    failures: tuple[RuleFailure, ...] = ()
    white_list: WhiteListProposal | None = None
    proposals: tuple[str, ...] = field(default=())
    """The proposals in English (logs, older clients)."""
    proposal_messages: tuple[Message, ...] = field(default=())
    """The same proposals as messages (``scheme_proposal.<what>``), in the same order."""

    @property
    def accepted(self) -> bool:
        """Whether a scheme meets every rule."""
        return self.scheme is not None


# --- the engine -------------------------------------------------------------------------------


def design_scheme(
    request: SchemeRequest,
    network: Network,
    catalogue: Catalogue,
    *,
    settings: EngineSettings | None = None,
    cables: Sequence[CableOption] | None = None,
) -> SchemeAnswer:
    """Choose supply point, kit, cable, breaker and metering for a request, or say why not.

    Args:
        request: the connection asked for.
        network: transformers (and optional LV lines) around the customer.
        catalogue: materials, kits and design rules.
        settings: design values; defaults to the catalogue's design rules.
        cables: cable options to choose from (defaults to the catalogue's, see
            :func:`cable_options`); a test or a district may supply its own R/X figures.

    Returns:
        A :class:`SchemeAnswer`; ``answer.scheme`` is ``None`` when no option meets the rules.
    """
    load = _load_of(request, catalogue, settings or settings_from(catalogue))
    request = load.request
    options = list(cables) if cables is not None else cable_options(
        catalogue, phases=request.phases, laying_method=load.laying
    )
    preferred = _preferred_option(request, options)

    kit = catalogue.connection_kit_for(request.category, request.phases, request.capacity_kw)
    if kit is None:
        return _answer(
            load,
            None,
            failures=[_no_kit_failure(catalogue, request)],
            proposals=_no_kit_proposals(catalogue, request),
        )
    equipment = _choose_equipment(catalogue, kit, load.current, load.settings)
    if isinstance(equipment, RuleFailure):
        return _equipment_refusal(load, catalogue, kit, equipment)
    return _supply_from_network(
        load, network, catalogue, kit, equipment, _cable_order(kit, options, preferred)
    )


@dataclass(frozen=True, slots=True)
class _Load:
    """The request as the rules see it (kit category), with the figures worked out once."""

    request: SchemeRequest
    settings: EngineSettings
    laying: str
    voltage: float
    cos_phi: float
    current: float
    load_kva: float


_Equipment = tuple[BreakerMaterial, MeterMaterial, CurrentTransformerMaterial | None]


def _load_of(request: SchemeRequest, catalogue: Catalogue, s: EngineSettings) -> _Load:
    """Check the request and work out its voltage, power factor, load current and kVA."""
    # orders say small_micro_enterprise etc.; kits and power factors know residential/business
    request = dataclasses.replace(request, category=catalogue.kit_category(request.category))
    _check_request(request, s)
    voltage = s.nominal_voltage_v[request.phases]
    cos_phi = s.power_factor[request.category]
    return _Load(
        request=request,
        settings=s,
        laying=request.laying_method or s.laying_method,
        voltage=voltage,
        cos_phi=cos_phi,
        current=load_current_a(
            request.capacity_kw, phases=request.phases, voltage_v=voltage, cos_phi=cos_phi
        ),
        load_kva=request.capacity_kw / cos_phi,
    )


def _answer(
    load: _Load, kit_code: str | None, scheme: Scheme | None = None, *,
    failures: Sequence[RuleFailure] = (), white_list: WhiteListProposal | None = None,
    proposals: Iterable[Message] = (),
) -> SchemeAnswer:
    unique = {p.english: p for p in proposals}  # the same proposal once, first place kept
    request = load.request
    return SchemeAnswer(
        category=request.category, phases=request.phases, capacity_kw=request.capacity_kw,
        cos_phi=load.cos_phi, load_current_a=load.current, load_kva=load.load_kva,
        kit_code=kit_code, scheme=scheme, failures=tuple(failures), white_list=white_list,
        proposals=tuple(unique), proposal_messages=tuple(unique.values()),
    )


def _equipment_refusal(
    load: _Load, catalogue: Catalogue, kit: ConnectionKit, failure: RuleFailure
) -> SchemeAnswer:
    """No breaker, meter or CT fits; a single-phase request over the meter limit may go 3-phase."""
    request = load.request
    three = catalogue.connection_kit_for(request.category, 3, request.capacity_kw)
    switch = failure.rule == "direct_meter_limit" and request.phases == 1 and three is not None
    return _answer(
        load, kit.code, failures=[failure],
        proposals=[Message("scheme_proposal.three_phase", {"kit": three.code})]
        if switch and three else [],
    )


def _supply_from_network(
    load: _Load, network: Network, catalogue: Catalogue, kit: ConnectionKit,
    equipment: _Equipment, cable_order: Sequence[CableOption],
) -> SchemeAnswer:
    """Try the transformers in reach, nearest first: the first that meets every rule supplies."""
    request, s = load.request, load.settings
    failures: list[RuleFailure] = []
    proposals: list[Message] = []
    candidates = network.within(request.lon, request.lat, s.max_supply_radius_m)
    for transformer, distance in candidates:
        scheme = _supply_from(
            load, network, catalogue, kit, equipment, cable_order,
            transformer, distance, failures, proposals,
        )
        if scheme is not None:
            # earlier transformers that failed are kept: the crew sees why the nearest was skipped
            return _answer(load, kit.code, scheme, failures=failures, proposals=proposals)

    if not candidates:
        failures.append(RuleFailure(
            "no_transformer_in_reach",
            f"no transformer within {s.max_supply_radius_m:.0f} m of the customer",
            None, "scheme_failure.no_transformer_in_reach",
            {"radius_m": round(s.max_supply_radius_m)},
        ))
    return _answer(
        load, kit.code, failures=failures, white_list=_white_list(failures), proposals=proposals
    )


def _supply_from(
    load: _Load, network: Network, catalogue: Catalogue, kit: ConnectionKit,
    equipment: _Equipment, cable_order: Sequence[CableOption],
    transformer: SupplyTransformer, distance: float,
    failures: list[RuleFailure], proposals: list[Message],
) -> Scheme | None:
    """The scheme via one transformer, or ``None`` with its failure (and proposals) noted."""
    request, s = load.request, load.settings
    spare = transformer.rated_kva * s.transformer_max_loading_pct / 100 - transformer.load_kva
    if spare < load.load_kva:
        failures.append(_capacity_failure(load, transformer, distance, spare))
        return None
    route, method, _ = network.route_m(
        transformer, request.lon, request.lat,
        detour_factor=s.detour_factor, max_service_drop_m=s.max_service_drop_m,
    )
    checks = _try_cables(load, cable_order, equipment[0].rating_a, route)
    chosen = checks[-1] if checks and checks[-1].passed else None
    terminal_v = load.voltage * (1 - chosen.voltage_drop_pct / 100) if chosen else 0.0
    lower_v, upper_v = s.terminal_voltage_limits_v[request.phases]
    if chosen is not None and not lower_v <= terminal_v <= upper_v:
        failures.append(RuleFailure(
            "terminal_voltage",
            f"estimated terminal voltage {terminal_v:.1f} V outside {lower_v}-{upper_v} V "
            f"via transformer {transformer.id}",
            transformer.id,
            "scheme_failure.terminal_voltage",
            {"voltage_v": round(terminal_v, 1), "lower_v": _g(lower_v), "upper_v": _g(upper_v),
             "transformer": transformer.id},
        ))
        return None
    if chosen is None:
        failures.append(_cable_failure(checks, transformer.id, route, s))
        proposals.extend(_cable_proposals(checks, route, load.laying))
        return None
    return _scheme(
        load, catalogue, kit, equipment, transformer,
        spare=spare, distance=distance, route=route, method=method, checks=checks,
        terminal_v=terminal_v,
    )


def _capacity_failure(
    load: _Load, transformer: SupplyTransformer, distance: float, spare: float
) -> RuleFailure:
    return RuleFailure(
        "transformer_capacity",
        f"transformer {transformer.id} at {distance:.0f} m has {spare:.1f} kVA spare, "
        f"{load.load_kva:.1f} kVA needed",
        transformer.id,
        "scheme_failure.transformer_capacity",
        {"transformer": transformer.id, "distance_m": round(distance),
         "spare_kva": round(spare, 1), "needed_kva": round(load.load_kva, 1)},
    )


def _try_cables(
    load: _Load, cable_order: Sequence[CableOption], breaker_rating_a: float, route: float
) -> list[CableCheck]:
    """Cables tried in order, stopping at the first that passes: it is the one chosen."""
    checks: list[CableCheck] = []
    for option in cable_order:
        checks.append(check_cable(
            option, current_a=load.current, breaker_rating_a=breaker_rating_a, length_m=route,
            cos_phi=load.cos_phi, phases=load.request.phases, voltage_v=load.voltage,
            budget_pct=load.settings.voltage_drop_budget_pct,
        ))
        if checks[-1].passed:
            break
    return checks


def _scheme(
    load: _Load, catalogue: Catalogue, kit: ConnectionKit, equipment: _Equipment,
    transformer: SupplyTransformer, *, spare: float, distance: float, route: float,
    method: Literal["along_line", "straight_line"], checks: Sequence[CableCheck],
    terminal_v: float,
) -> Scheme:
    """The accepted scheme, with every figure it was computed from and its bill of materials."""
    s = load.settings
    breaker, meter, ct = equipment
    chosen = checks[-1]
    return Scheme(
        kit_code=kit.code,
        transformer_id=transformer.id,
        transformer_rated_kva=transformer.rated_kva,
        transformer_spare_kva_before=spare,
        transformer_spare_kva_after=spare - load.load_kva,
        distance_m=distance,
        route_length_m=route,
        route_method=method,
        detour_factor=s.detour_factor if method == "straight_line" else None,
        laying_method=load.laying,
        cable=chosen,
        breaker_code=breaker.code,
        breaker_rating_a=breaker.rating_a,
        metering=kit.metering,
        meter_code=meter.code,
        ct_code=ct.code if ct else None,
        ct_primary_a=ct.primary_a if ct else None,
        voltage_drop_budget_pct=s.voltage_drop_budget_pct,
        nominal_voltage_v=load.voltage,
        terminal_voltage_v=terminal_v,
        terminal_voltage_limits_v=s.terminal_voltage_limits_v[load.request.phases],
        bill_of_materials=bill_of_materials(
            catalogue, kit, route_m=route,
            replace={"cable": chosen.code, "breaker": breaker.code, "meter": meter.code,
                     **({"ct": ct.code} if ct else {})},
        ),
        cables_considered=tuple(checks),
    )


def check_cable(
    option: CableOption, *, current_a: float, breaker_rating_a: float, length_m: float,
    cos_phi: float, phases: int, voltage_v: float, budget_pct: float,
) -> CableCheck:
    """Check one cable for a route: ampacity ≥ breaker ≥ load, and voltage drop ≤ budget."""
    drop = voltage_drop_pct(
        current_a=current_a, length_m=length_m, r_ohm_per_km=option.r_ohm_per_km,
        x_ohm_per_km=option.x_ohm_per_km, cos_phi=cos_phi, phases=phases, voltage_v=voltage_v,
    )
    longest = max_length_m(
        current_a=current_a, r_ohm_per_km=option.r_ohm_per_km, x_ohm_per_km=option.x_ohm_per_km,
        cos_phi=cos_phi, phases=phases, voltage_v=voltage_v, budget_pct=budget_pct,
    )
    reason: str | None = None
    if option.ampacity_a < breaker_rating_a:
        reason = (
            f"ampacity {option.ampacity_a:g} A below the breaker rating {breaker_rating_a:g} A "
            f"(load {current_a:.1f} A)"
        )
    elif drop > budget_pct:
        reason = (
            f"voltage drop {drop:.2f} % over {length_m:.0f} m exceeds the {budget_pct:g} % budget "
            f"(passes up to {longest:.0f} m)"
        )
    return CableCheck(
        code=option.code, conductor=option.conductor, section_mm2=option.section_mm2,
        ampacity_a=option.ampacity_a, r_ohm_per_km=option.r_ohm_per_km,
        x_ohm_per_km=option.x_ohm_per_km, voltage_drop_pct=drop, max_length_m=longest,
        passed=reason is None, reason=reason,
    )


def bill_of_materials(
    catalogue: Catalogue, kit: ConnectionKit, *, route_m: float,
    replace: dict[str, str] | None = None,
) -> tuple[BomLine, ...]:
    """The kit's materials for a route: fixed items plus per-metre items × route length.

    ``replace`` maps a role (cable, breaker, meter, ct) to the material the scheme chose instead
    of the kit's. Quantities round up: whole metres and pieces, 0.1 kg.
    """
    replace = replace or {}
    lines: list[BomLine] = []
    fixed = [(i.material, i.quantity, i.role) for i in kit.items]
    scaled = [(i.material, i.quantity_per_m * route_m, i.role) for i in kit.per_metre]
    for code, qty, role in fixed + scaled:
        material = catalogue.material(replace.get(role, code))
        lines.append(BomLine(
            material_code=material.code, name_zh=material.name.zh, name_en=material.name.en,
            unit=material.unit, quantity=_round_up(qty, material.unit), role=role,
        ))
    return tuple(lines)


def _round_up(quantity: float, unit: str) -> float:
    if unit == "kg":
        return math.ceil(round(quantity * 10, 6)) / 10
    # round() first so 1.05 × 100 m = 105.00000000000001 does not become 106 m
    return float(math.ceil(round(quantity, 6)))


def _check_request(request: SchemeRequest, s: EngineSettings) -> None:
    if request.category not in s.power_factor:
        raise SchemeInputError(
            f"unknown category {request.category!r}; expected one of {sorted(s.power_factor)}"
        )
    if request.phases not in (1, 3):
        raise SchemeInputError("phases must be 1 or 3")
    if not (math.isfinite(request.capacity_kw) and request.capacity_kw > 0):
        raise SchemeInputError("capacity_kw must be a positive number")
    check_lon_lat(request.lon, request.lat, "customer")


def _preferred_option(request: SchemeRequest, options: Sequence[CableOption]) -> CableOption | None:
    if request.preferred_cable is None:
        return None
    found = next((o for o in options if o.code == request.preferred_cable), None)
    if found is None:
        raise SchemeInputError(
            f"cable {request.preferred_cable} is not a {request.phases}-phase cable option"
        )
    return found


def _cable_order(
    kit: ConnectionKit, options: Sequence[CableOption], preferred: CableOption | None
) -> list[CableOption]:
    """The crew's cable first, then the kit's, then larger sections in preference order.

    Sections smaller than the kit's of the same material are never proposed: the kit is the
    standard design and the engine only departs from it upwards.
    """
    kit_code = kit.cable_item.material
    kit_option = next((o for o in options if o.code == kit_code), None)
    floor = kit_option.section_mm2 if kit_option else 0.0
    ordered: dict[str, CableOption] = {}
    for o in ([preferred] if preferred else []) + ([kit_option] if kit_option else []):
        ordered.setdefault(o.code, o)
    for o in options:
        same_material = kit_option is not None and o.conductor == kit_option.conductor
        if o.code not in ordered and not (same_material and o.section_mm2 <= floor):
            ordered[o.code] = o
    return list(ordered.values())


def _choose_equipment(
    catalogue: Catalogue, kit: ConnectionKit, current: float, s: EngineSettings
) -> _Equipment | RuleFailure:
    if kit.metering == "direct" and current > s.direct_meter_limit_a:
        return RuleFailure(
            "direct_meter_limit",
            f"load current {current:.1f} A exceeds the direct-meter limit "
            f"{s.direct_meter_limit_a:g} A of kit {kit.code}",
            None, "scheme_failure.direct_meter_limit",
            {"current_a": round(current, 1), "limit_a": _g(s.direct_meter_limit_a),
                    "kit": kit.code},
        )
    poles = 2 if kit.phases == 1 else 4
    breaker = _fit(
        catalogue, kit, "breaker", BreakerMaterial,
        lambda b: b.poles == poles and b.rating_a >= current, size=lambda b: b.rating_a,
    )
    if breaker is None:
        return RuleFailure(
            "breaker", f"no {poles}-pole breaker rated ≥ {current:.1f} A",
            None, "scheme_failure.breaker", {"poles": poles, "current_a": round(current, 1)},
        )
    meter = _fit(
        catalogue, kit, "meter", MeterMaterial,
        lambda m: m.phases == kit.phases and m.connection == kit.metering
        and (kit.metering == "ct" or m.max_current_a >= current),
        size=lambda m: m.max_current_a,
    )
    if meter is None:
        return RuleFailure(
            "metering_equipment", f"no {kit.metering} meter for {current:.1f} A",
            None, "scheme_failure.no_meter",
            {"metering": _METERING_NAMES[kit.metering], "current_a": round(current, 1)},
        )
    ct: CurrentTransformerMaterial | None = None
    if kit.metering == "ct":
        ct = _fit(
            catalogue, kit, "ct", CurrentTransformerMaterial,
            lambda c: c.primary_a >= current, size=lambda c: c.primary_a,
        )
        if ct is None:
            return RuleFailure(
                "metering_equipment", f"no CT with primary ≥ {current:.1f} A",
                None, "scheme_failure.no_ct", {"current_a": round(current, 1)},
            )
    return breaker, meter, ct


def _fit(
    catalogue: Catalogue, kit: ConnectionKit, role: KitRole, kind: type[_Mat],
    ok: Callable[[_Mat], bool], *, size: Callable[[_Mat], float],
) -> _Mat | None:
    """The kit's own part for ``role`` when fit, else the smallest fit one in the catalogue."""
    item = kit.item_for(role)
    if item is not None:
        own = catalogue.material(item.material)
        if isinstance(own, kind) and ok(own):
            return own
    pool = [m for m in catalogue.materials.values() if isinstance(m, kind) and ok(m)]
    return min(pool, key=size, default=None)


def _cable_failure(
    checks: Sequence[CableCheck], transformer_id: str, route: float, s: EngineSettings
) -> RuleFailure:
    if all(c.reason and c.reason.startswith("ampacity") for c in checks):
        return RuleFailure(
            "ampacity", f"no cable carries the breaker current via transformer {transformer_id}",
            transformer_id,
            "scheme_failure.ampacity",
            {"transformer": transformer_id},
        )
    best = min(checks, key=lambda c: c.voltage_drop_pct)
    return RuleFailure(
        "voltage_drop",
        f"via transformer {transformer_id} ({route:.0f} m) the best cable {best.code} drops "
        f"{best.voltage_drop_pct:.2f} %, over the {s.voltage_drop_budget_pct:g} % budget",
        transformer_id,
        "scheme_failure.voltage_drop",
        {"transformer": transformer_id, "route_m": round(route), "cable": best.code,
         "drop_pct": round(best.voltage_drop_pct, 2), "budget_pct": _g(s.voltage_drop_budget_pct)},
    )


def _cable_proposals(checks: Iterable[CableCheck], route: float, laying: str) -> list[Message]:
    carrying = [c for c in checks if not (c.reason or "").startswith("ampacity")]
    if not carrying:
        return [Message("scheme_proposal.parallel_cables", {"laying": laying})]
    best = max(carrying, key=lambda c: c.max_length_m)
    return [
        Message(
            "scheme_proposal.shorten_route",
            {"max_m": round(best.max_length_m), "route_m": round(route), "cable": best.code},
        )
    ]


def _white_list(failures: Sequence[RuleFailure]) -> WhiteListProposal | None:
    # an ampacity failure is the same at every transformer: the grid is not what is short
    grid_rules: tuple[RuleName, ...] = (
        "no_transformer_in_reach", "transformer_capacity", "voltage_drop", "terminal_voltage",
    )
    grid = [f for f in failures if f.rule in grid_rules]
    if not grid:
        return None
    rules = sorted({f.rule for f in grid})
    return WhiteListProposal(
        grid[0].rule,
        (
            "no supply point meets the rules (" + ", ".join(rules) + "): register the request "
            "on the white list, reinforce the grid (new transformer, capacity or LV line), "
            "then connect"
        ),
        "scheme_white_list.grid_short",  # a message of field_api.messages, not an error code
        {"rules": [_RULE_NAMES[r] for r in rules]},
    )


def _no_kit_failure(catalogue: Catalogue, request: SchemeRequest) -> RuleFailure:
    kits = catalogue.connection_kits_for(request.category, request.phases)
    category = _CATEGORY_NAMES.get(request.category, request.category)
    if not kits:
        return RuleFailure(
            "no_standard_kit",
            f"no standard kit for {request.category} {request.phases}-phase connections",
            None, "scheme_failure.no_kit_for_category",
            {"category": category, "phases": request.phases},
        )
    top = max(k.capacity.up_to_kw for k in kits)
    return RuleFailure(
        "no_standard_kit",
        f"{request.capacity_kw:g} kW is outside the standard kits for {request.category} "
        f"{request.phases}-phase connections (up to {top:g} kW)",
        None, "scheme_failure.outside_kits",
        {"capacity_kw": _g(request.capacity_kw), "category": category,
                "phases": request.phases, "up_to_kw": _g(top)},
    )


def _no_kit_proposals(catalogue: Catalogue, request: SchemeRequest) -> tuple[Message, ...]:
    other = 3 if request.phases == 1 else 1
    kit = catalogue.connection_kit_for(request.category, other, request.capacity_kw)
    if kit is not None:
        return (Message("scheme_proposal.other_phases", {"phases": other, "kit": kit.code}),)
    return (Message("scheme_proposal.high_voltage"),)


def _g(value: float) -> float | int:
    """A figure as a message param: whole numbers without ".0" (as ``:g`` writes them)."""
    return int(value) if float(value).is_integer() else value


# Names of codes that a message shows, in each language (a param may be such a name).
_RULE_NAMES: dict[str, dict[str, str]] = {
    "no_transformer_in_reach": {"zh-CN": "供电半径内无变压器", "en": "no_transformer_in_reach"},
    "transformer_capacity": {"zh-CN": "变压器容量不足", "en": "transformer_capacity"},
    "voltage_drop": {"zh-CN": "电压降超限", "en": "voltage_drop"},
    "terminal_voltage": {"zh-CN": "末端电压越限", "en": "terminal_voltage"},
}
_METERING_NAMES: dict[str, dict[str, str]] = {
    "direct": {"zh-CN": "直接接入式", "en": "direct"},
    "ct": {"zh-CN": "经互感器接入式", "en": "ct"},
}
_CATEGORY_NAMES: dict[str, dict[str, str]] = {
    "residential": {"zh-CN": "居民", "en": "residential"},
    "business": {"zh-CN": "非居民", "en": "business"},
}
