"""The loaded catalogue: every kit, material, design rule and card, with look-ups."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from standard_kits.schemas import (
    CableMaterial,
    ChecklistCard,
    Conductor,
    ConnectionKit,
    DesignRules,
    Material,
    RepairKit,
)


class UnknownCode(KeyError):
    """A material, kit or card code that the catalogue does not hold."""


@dataclass(frozen=True, eq=False)
class Catalogue:
    """All standard-kit data, validated; build it with :func:`standard_kits.load_catalogue`.

    Immutable and compared by identity, so it can key caches of figures derived from it.
    """

    materials: dict[str, Material]
    connection_kits: tuple[ConnectionKit, ...]
    repair_kits: tuple[RepairKit, ...]
    design_rules: DesignRules
    cards: tuple[ChecklistCard, ...]
    _by_defect: dict[str, RepairKit] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_defect = {c: k for k in self.repair_kits for c in k.defect_classes}
        object.__setattr__(self, "_by_defect", by_defect)

    # --- categories ---
    def kit_category(self, category: str) -> str:
        """The kit category an order category is built as (small_micro_enterprise → business).

        Unknown names are returned unchanged, so a look-up with them simply finds nothing.
        """
        return self.design_rules.category_aliases.get(category, category)

    # --- materials ---
    def get_material(self, code: str) -> Material | None:
        """The material with ``code``, or ``None``."""
        return self.materials.get(code)

    def material(self, code: str) -> Material:
        """The material with ``code``; raises :class:`UnknownCode` when there is none."""
        try:
            return self.materials[code]
        except KeyError:
            raise UnknownCode(f"unknown material code {code!r}") from None

    def cables(
        self, *, cores: int | None = None, conductor: Conductor | None = None
    ) -> list[CableMaterial]:
        """Cable materials, optionally of one core count and conductor, smallest section first."""
        found = [
            m for m in self.materials.values()
            if isinstance(m, CableMaterial)
            and (cores is None or m.cores == cores)
            and (conductor is None or m.conductor == conductor)
        ]
        return sorted(found, key=lambda c: (c.conductor, c.section_mm2))

    # --- connection kits ---
    def get_connection_kit(self, code: str) -> ConnectionKit | None:
        """The connection kit with ``code``, or ``None``."""
        return next((k for k in self.connection_kits if k.code == code), None)

    def connection_kit_for(
        self, category: str, phases: int, capacity_kw: float
    ) -> ConnectionKit | None:
        """The kit whose band holds ``capacity_kw`` for this category and phases, or ``None``."""
        category = self.kit_category(category)
        return next(
            (
                k for k in self.connection_kits
                if category in k.categories and k.phases == phases
                and k.capacity.contains(capacity_kw)
            ),
            None,
        )

    def connection_kits_for(self, category: str, phases: int) -> list[ConnectionKit]:
        """All kits for a category and phases, lowest band first."""
        category = self.kit_category(category)
        kits = [k for k in self.connection_kits if category in k.categories and k.phases == phases]
        return sorted(kits, key=lambda k: k.capacity.above_kw)

    # --- repair kits ---
    def repair_kit_for(self, defect_class: str) -> RepairKit | None:
        """The repair kit for a defect class reported by inspection, or ``None``."""
        return self._by_defect.get(defect_class)

    # --- checklist cards ---
    def get_card(self, code: str, version: int) -> ChecklistCard | None:
        """One version of a card, or ``None``."""
        return next((c for c in self.cards if c.code == code and c.version == version), None)

    def card_in_force(
        self, *, category: str, phases: int, metering: str, on: dt.date
    ) -> ChecklistCard | None:
        """The card version in force on ``on`` for an installation of this kind, or ``None``.

        The newest version whose ``valid_from`` is on or before the date wins, so an order keeps
        the card that was in force when it is checked even after a new version is published.
        """
        category = self.kit_category(category)
        candidates = [
            c for c in self.cards
            if c.valid_from <= on and c.applicability.covers(category, phases, metering)
        ]
        return max(candidates, key=lambda c: (c.valid_from, c.version), default=None)
