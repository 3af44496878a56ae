"""Pydantic schemas for the standard-kit data: materials, kits, design rules and checklist cards.

Every model is frozen and forbids unknown keys, so a typo in a YAML file is an error rather than
a silently ignored field. Checks that need only one object live here as validators; checks that
cross files (a kit naming an unknown material, overlapping kit ranges, a cable section without
ampacity) live in :mod:`standard_kits.validation`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

Mark = Literal["C", "S", "U", "derived"]
"""How sure we are of a value: [C] confirmed, [S] secondary sources, [U] unconfirmed practice."""

Category = Literal["residential", "business"]
Phases = Literal[1, 3]
Conductor = Literal["Cu", "Al"]
Metering = Literal["direct", "ct"]
KitRole = Literal["cable", "breaker", "meter", "ct", "meter_box", "other"]
CheckPhase = Literal["before_energising", "supply_on"]
PhotoKind = Literal[
    "site", "meter_before", "meter_after", "meter_box", "seal", "wiring", "signature", "barcode",
    "other",
]
SchemeReference = Literal[
    "scheme_cable_section_mm2", "scheme_breaker_rating_a", "scheme_ct_primary_a",
]
"""Context values a measurement item can be compared with instead of fixed limits."""

_CODE = r"^[A-Z0-9][A-Z0-9._\-]*$"
_ITEM_CODE = r"^[a-z][a-z0-9_]*$"


class Frozen(BaseModel):
    """Base for every data model: immutable, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Name(Frozen):
    """A bilingual label."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Provenance(Frozen):
    """Where a value comes from; [S]/[U]/derived values must be marked as defaults to replace."""

    source: str | None = None
    mark: Mark
    default_to_replace: bool = False

    @model_validator(mode="after")
    def _sourced_or_default(self) -> Provenance:
        if not self.source and not self.default_to_replace:
            raise ValueError("a value needs its source or default_to_replace: true")
        if self.mark != "C" and not self.default_to_replace:
            raise ValueError(
                f"a value marked [{self.mark}] is a configurable default: "
                "set default_to_replace: true"
            )
        return self


T = TypeVar("T")


class Sourced(Provenance, Generic[T]):
    """One design value with its provenance."""

    value: T
    unit: str | None = None


# --- materials --------------------------------------------------------------------------------


class _MaterialBase(Frozen):
    code: str = Field(pattern=_CODE)
    name: Name
    unit: Literal["m", "pcs", "set", "kg"]


class CableMaterial(_MaterialBase):
    """A low-voltage power cable sold by the metre."""

    kind: Literal["cable"]
    conductor: Conductor
    cores: int = Field(ge=2, le=5)
    section_mm2: float = Field(gt=0)
    insulation: Literal["XLPE", "PVC"]
    rated_voltage: str = "0.6/1 kV"

    @model_validator(mode="after")
    def _by_the_metre(self) -> CableMaterial:
        if self.unit != "m":
            raise ValueError(f"cable {self.code} must be counted in metres (unit: m)")
        return self


class BreakerMaterial(_MaterialBase):
    """A miniature or moulded-case circuit breaker, optionally with residual-current protection."""

    kind: Literal["breaker"]
    poles: int = Field(ge=1, le=4)
    rating_a: float = Field(gt=0)
    breaker_type: Literal["MCB", "MCCB"]
    residual_current_ma: float | None = Field(default=None, gt=0)


class MeterMaterial(_MaterialBase):
    """An energy meter; `base_current_a(max_current_a)` as on the nameplate, e.g. 5(60) A."""

    kind: Literal["meter"]
    phases: Phases
    connection: Metering
    base_current_a: float = Field(gt=0)
    max_current_a: float = Field(gt=0)
    accuracy_class: str

    @model_validator(mode="after")
    def _currents(self) -> MeterMaterial:
        if self.max_current_a < self.base_current_a:
            raise ValueError(f"meter {self.code}: max current below base current")
        return self


class CurrentTransformerMaterial(_MaterialBase):
    """A low-voltage metering current transformer."""

    kind: Literal["ct"]
    primary_a: float = Field(gt=0)
    secondary_a: float = Field(gt=0)
    accuracy_class: str

    @property
    def ratio(self) -> str:
        """The ratio as written on drawings, e.g. ``400/5``."""
        return f"{self.primary_a:g}/{self.secondary_a:g}"


class MeterBoxMaterial(_MaterialBase):
    """A meter box (表箱)."""

    kind: Literal["meter_box"]
    box_type: Literal["single_phase", "three_phase_direct", "three_phase_ct"]
    positions: int = Field(ge=1)


class InsulatorMaterial(_MaterialBase):
    """A line insulator."""

    kind: Literal["insulator"]
    insulator_type: Literal["suspension_disc", "composite_suspension", "pin", "post", "spool"]
    rated_voltage_kv: float = Field(gt=0)


class FittingMaterial(_MaterialBase):
    """A line fitting (金具): clamps, shackles, ball eyes, crossarm hardware."""

    kind: Literal["fitting"]
    fitting_type: str = Field(min_length=1)


class ConsumableMaterial(_MaterialBase):
    """Seals, lugs, clips, tape and other small parts."""

    kind: Literal["consumable"]


Material = Annotated[
    CableMaterial | BreakerMaterial | MeterMaterial | CurrentTransformerMaterial
    | MeterBoxMaterial | InsulatorMaterial | FittingMaterial | ConsumableMaterial,
    Field(discriminator="kind"),
]


class MaterialsFile(Frozen):
    """The contents of ``data/materials.yaml``."""

    materials: list[Material] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> MaterialsFile:
        _reject_duplicates([m.code for m in self.materials], "material code")
        return self


# --- kits -------------------------------------------------------------------------------------


class KitItem(Frozen):
    """A fixed quantity of one material."""

    material: str = Field(pattern=_CODE)
    quantity: float = Field(gt=0)
    role: KitRole = "other"


class PerMetreItem(Frozen):
    """A material whose quantity scales with the route length (cable, clips, conduit)."""

    material: str = Field(pattern=_CODE)
    quantity_per_m: float = Field(gt=0)
    role: KitRole = "other"


class CapacityRange(Frozen):
    """Capacity band ``(above_kw, up_to_kw]``: the lower bound is exclusive."""

    above_kw: float = Field(ge=0)
    up_to_kw: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> CapacityRange:
        if self.up_to_kw <= self.above_kw:
            raise ValueError(f"empty capacity range ({self.above_kw}, {self.up_to_kw}] kW")
        return self

    def contains(self, capacity_kw: float) -> bool:
        """Whether ``capacity_kw`` falls in the band."""
        return self.above_kw < capacity_kw <= self.up_to_kw

    def overlaps(self, other: CapacityRange) -> bool:
        """Whether two half-open bands share any capacity."""
        return self.above_kw < other.up_to_kw and other.above_kw < self.up_to_kw


class ConnectionKit(Frozen):
    """A standard low-voltage connection kit (R1, B3, ...)."""

    code: str = Field(pattern=_CODE)
    name: Name
    categories: list[Category] = Field(min_length=1)
    phases: Phases
    metering: Metering
    capacity: CapacityRange
    items: list[KitItem] = Field(min_length=1)
    per_metre: list[PerMetreItem] = Field(min_length=1)
    basis: Provenance

    @model_validator(mode="after")
    def _roles(self) -> ConnectionKit:
        roles = [i.role for i in self.items]
        for role in ("breaker", "meter", "meter_box"):
            if roles.count(role) != 1:
                raise ValueError(f"kit {self.code}: needs exactly one item with role {role}")
        if (roles.count("ct") == 1) != (self.metering == "ct"):
            raise ValueError(f"kit {self.code}: a CT item is required exactly when metering is ct")
        if "cable" in roles:
            raise ValueError(f"kit {self.code}: the cable belongs in per_metre, not items")
        if [i.role for i in self.per_metre].count("cable") != 1:
            raise ValueError(f"kit {self.code}: needs exactly one per-metre item with role cable")
        return self

    def item_for(self, role: KitRole) -> KitItem | None:
        """The fixed item playing ``role``, if any."""
        return next((i for i in self.items if i.role == role), None)

    @property
    def cable_item(self) -> PerMetreItem:
        """The per-metre cable item (exactly one exists, see the validator)."""
        return next(i for i in self.per_metre if i.role == "cable")


class ConnectionKitsFile(Frozen):
    """The contents of ``data/connection_kits.yaml``."""

    kits: list[ConnectionKit] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> ConnectionKitsFile:
        _reject_duplicates([k.code for k in self.kits], "connection kit code")
        return self


class RepairKit(Frozen):
    """Materials and the task for repairing one class of line defect found by inspection."""

    code: str = Field(pattern=_CODE)
    name: Name
    defect_classes: list[str] = Field(min_length=1)
    task: Name
    requires_outage: bool
    items: list[KitItem]
    basis: Provenance


class RepairKitsFile(Frozen):
    """The contents of ``data/repair_kits.yaml``."""

    repair_kits: list[RepairKit] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> RepairKitsFile:
        _reject_duplicates([k.code for k in self.repair_kits], "repair kit code")
        _reject_duplicates(
            [c for k in self.repair_kits for c in k.defect_classes], "repair kit defect class"
        )
        return self


# --- design rules -----------------------------------------------------------------------------


class VoltageLimits(Provenance):
    """Allowed supply voltage at the customer's terminal."""

    lower_v: float = Field(gt=0)
    upper_v: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> VoltageLimits:
        if self.lower_v >= self.upper_v:
            raise ValueError("terminal voltage lower limit must be below the upper limit")
        return self


class PerConductorTable(Provenance):
    """Values per conductor material and section, e.g. resistance at 20 °C in Ω/km."""

    unit: str
    values: dict[Conductor, dict[float, float]]


class PerSectionTable(Provenance):
    """Values per section regardless of conductor material (reactance in Ω/km)."""

    unit: str
    values: dict[float, float]


class AmpacityTable(Provenance):
    """Current-carrying capacity in A for one laying method."""

    laying_method: str = Field(min_length=1)
    description: str
    values: dict[Conductor, dict[float, float]]


class DesignRules(Frozen):
    """The values a supply scheme is computed with (``data/design_rules.yaml``)."""

    power_factor: dict[Category, Sourced[float]]
    category_aliases: dict[str, Category] = Field(default_factory=dict)
    """Order categories (e.g. small_micro_enterprise) mapped to the kit categories."""
    voltage_drop_budget_pct: Sourced[float]
    nominal_voltage_v: dict[Phases, Sourced[float]]
    terminal_voltage_limits: dict[Phases, VoltageLimits]
    direct_meter_limit_a: Sourced[float]
    conductor_temperature_c: Sourced[float]
    temperature_coefficient_per_k: dict[Conductor, Sourced[float]]
    detour_factor: Sourced[float]
    max_supply_radius_m: Sourced[float]
    max_service_drop_m: Sourced[float]
    transformer_max_loading_pct: Sourced[float]
    transformer_load_power_factor: Sourced[float]
    default_laying_method: Sourced[str]
    cable_material_preference: Sourced[list[Conductor]]
    conductor_resistance_20c: PerConductorTable
    reactance: PerSectionTable
    ampacity: list[AmpacityTable] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> DesignRules:
        for key in ("residential", "business"):
            if key not in self.power_factor:
                raise ValueError(f"power_factor needs a value for {key}")
        for phases in (1, 3):
            if phases not in self.nominal_voltage_v or phases not in self.terminal_voltage_limits:
                raise ValueError(f"nominal voltage and terminal limits needed for {phases} phase")
        for cat, pf in self.power_factor.items():
            if not 0 < pf.value <= 1:
                raise ValueError(f"power factor for {cat} must be in (0, 1]")
        _reject_duplicates([a.laying_method for a in self.ampacity], "ampacity laying method")
        if self.default_laying_method.value not in {a.laying_method for a in self.ampacity}:
            raise ValueError(
                f"default laying method {self.default_laying_method.value} has no ampacity table"
            )
        return self

    def ampacity_table(self, laying_method: str) -> AmpacityTable | None:
        """The ampacity table for a laying method, or ``None``."""
        return next((a for a in self.ampacity if a.laying_method == laying_method), None)

    def resistance_ohm_per_km(
        self, conductor: Conductor, section_mm2: float, *, temperature_c: float | None = None
    ) -> float:
        """AC resistance (≈ DC for LV sections) at the operating temperature, in Ω/km.

        R(θ) = R20 · (1 + α20 · (θ − 20)), with θ the design conductor temperature by default.
        """
        r20 = self.conductor_resistance_20c.values[conductor][section_mm2]
        theta = self.conductor_temperature_c.value if temperature_c is None else temperature_c
        alpha = self.temperature_coefficient_per_k[conductor].value
        return r20 * (1.0 + alpha * (theta - 20.0))

    def reactance_ohm_per_km(self, section_mm2: float) -> float:
        """Positive-sequence reactance at 50 Hz, in Ω/km."""
        return self.reactance.values[section_mm2]


# --- checklist cards --------------------------------------------------------------------------


class Applicability(Frozen):
    """Which installations a card applies to."""

    categories: list[Category] = Field(min_length=1)
    phases: list[Phases] = Field(min_length=1)
    metering: list[Metering] = Field(min_length=1)

    def covers(self, category: str, phases: int, metering: str) -> bool:
        """Whether an installation of this kind is checked with the card."""
        return category in self.categories and phases in self.phases and metering in self.metering


class _ItemBase(Frozen):
    code: str = Field(pattern=_ITEM_CODE)
    label: Name
    phase: CheckPhase
    critical: bool
    basis: Provenance | None = None


class YesNoItem(_ItemBase):
    """A yes/no check; passes when the answer equals ``expected``."""

    type: Literal["yes_no"]
    expected: bool = True


class LimitOverride(Frozen):
    """Relaxed limits where the supplying transformer is small (e.g. earthing ≤ 10 Ω ≤ 100 kVA)."""

    transformer_kva_at_most: float = Field(gt=0)
    lower: float | None = None
    upper: float | None = None
    basis: Provenance | None = None


class MeasurementItem(_ItemBase):
    """A measured value checked against inclusive limits or against the scheme's figure."""

    type: Literal["measurement"]
    unit: str = Field(min_length=1)
    lower: float | None = None
    upper: float | None = None
    reference: SchemeReference | None = None
    overrides: list[LimitOverride] = Field(default_factory=list)

    @model_validator(mode="after")
    def _limits(self) -> MeasurementItem:
        if self.reference is None and self.lower is None and self.upper is None:
            raise ValueError(f"measurement {self.code}: needs a lower/upper limit or a reference")
        if self.reference is not None and (self.lower is not None or self.upper is not None):
            raise ValueError(f"measurement {self.code}: a reference excludes fixed limits")
        pairs = [(self.lower, self.upper)] + [(o.lower, o.upper) for o in self.overrides]
        for lower, upper in pairs:
            if lower is not None and upper is not None and lower > upper:
                raise ValueError(f"measurement {self.code}: lower limit {lower} > upper {upper}")
        return self


class PhotoItem(_ItemBase):
    """A required photo of a kind; passes when at least ``min_count`` such photos exist."""

    type: Literal["photo"]
    kind: PhotoKind
    min_count: int = Field(default=1, ge=1)


class BarcodeMatchItem(_ItemBase):
    """The scanned meter barcode must equal the one decoded from the photo (and the issued one)."""

    type: Literal["barcode_match"]


class ChoiceItem(_ItemBase):
    """One of ``options``; passes when the answer is among ``pass_options``."""

    type: Literal["choice"]
    options: list[str] = Field(min_length=2)
    pass_options: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _options(self) -> ChoiceItem:
        if len(set(self.options)) != len(self.options):
            raise ValueError(f"choice {self.code}: duplicate options")
        unknown = sorted(set(self.pass_options) - set(self.options))
        if unknown:
            raise ValueError(f"choice {self.code}: pass options {unknown} are not options")
        return self


class TextItem(_ItemBase):
    """A recorded text such as seal numbers; passes when non-empty and matching ``pattern``."""

    type: Literal["text"]
    pattern: str | None = None

    @model_validator(mode="after")
    def _pattern_compiles(self) -> TextItem:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"text {self.code}: bad pattern: {exc}") from exc
        return self


CardItem = Annotated[
    YesNoItem | MeasurementItem | PhotoItem | BarcodeMatchItem | ChoiceItem | TextItem,
    Field(discriminator="type"),
]


class ChecklistCard(Frozen):
    """A versioned completion-check card (竣工检验卡)."""

    code: str = Field(pattern=_CODE)
    version: int = Field(ge=1)
    valid_from: dt.date
    title: Name
    applicability: Applicability
    items: list[CardItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _items(self) -> ChecklistCard:
        _reject_duplicates([i.code for i in self.items], f"item code in card {self.code}")
        return self

    def items_in(self, phase: CheckPhase) -> list[CardItem]:
        """The card's items checked in ``phase``, in card order."""
        return [i for i in self.items if i.phase == phase]


def _reject_duplicates(values: list[str], what: str) -> None:
    dupes = sorted(v for v, n in Counter(values).items() if n > 1)
    if dupes:
        raise ValueError(f"duplicate {what}: {', '.join(dupes)}")
