"""Request and response bodies of supply schemes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from field_api import messages
from field_api.schemes.models import SupplyScheme
from field_api.types import Text


class SchemeCreate(BaseModel):
    """A crew's scheme request for its order; the order gives category, phases and capacity."""

    model_config = ConfigDict(extra="forbid")

    lon: float | None = Field(default=None, ge=-180, le=180, description="Surveyed position.")
    lat: float | None = Field(default=None, ge=-90, le=90, description="Surveyed position.")
    laying_method: Text | None = Field(
        default=None, max_length=8, description="E (air/tray) or D1 (duct in ground)."
    )
    preferred_cable: Text | None = Field(
        default=None, max_length=32, description="A cable to try first, e.g. what is on the truck."
    )
    accept: bool = Field(
        default=True, description="Save a passing scheme as the order's scheme (scheme_answered)."
    )

    @model_validator(mode="after")
    def _position_whole(self) -> SchemeCreate:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat of the surveyed position, or neither")
        return self


class CableCheckRead(BaseModel):
    code: str
    conductor: str
    section_mm2: float
    ampacity_a: float
    r_ohm_per_km: float
    x_ohm_per_km: float
    voltage_drop_pct: float
    max_length_m: float | None
    passed: bool
    reason: str | None


class BomLineRead(BaseModel):
    material_code: str
    name_zh: str
    name_en: str
    unit: str
    quantity: float
    role: str


def _message(code: Any, params: Any, english: str, language: str) -> str:
    """A stored text in ``language``; an answer saved before the catalogue keeps its English."""
    if not isinstance(code, str):
        return english
    return messages.render(code, params if isinstance(params, dict) else {}, language)


class RuleFailureRead(BaseModel):
    """A failed rule: ``message`` is its text in the request's language (from ``code`` and
    ``params``, see ``field_api.messages``), ``detail`` the same in English."""

    rule: str
    code: str | None = Field(
        default=None, description="The message's key; null in answers saved before it."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="What the message needs, in no language."
    )
    message: str = Field(default="", description="The failure in the request's language.")
    detail: str = Field(description="The failure in English.")
    transformer_id: str | None = Field(description="The transformer's code.")

    @classmethod
    def of(cls, stored: dict[str, Any], language: str) -> RuleFailureRead:
        code, params = stored.get("code"), stored.get("params") or {}
        return cls(
            rule=stored["rule"], code=code, params=params, detail=stored["detail"],
            message=_message(code, params, stored["detail"], language),
            transformer_id=stored.get("transformer_id"),
        )


class WhiteListRead(BaseModel):
    """The white-list proposal: ``message`` in the request's language, ``detail`` in English."""

    reason: str
    code: str | None = Field(
        default=None, description="The message's key; null in answers saved before it."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="What the message needs, in no language."
    )
    message: str = Field(default="", description="The proposal in the request's language.")
    detail: str = Field(description="The proposal in English.")

    @classmethod
    def of(cls, stored: dict[str, Any], language: str) -> WhiteListRead:
        code, params = stored.get("code"), stored.get("params") or {}
        return cls(
            reason=stored["reason"], code=code, params=params, detail=stored["detail"],
            message=_message(code, params, stored["detail"], language),
        )


class ProposalRead(BaseModel):
    """One proposal for people: its key, its params and its text in the request's language."""

    code: str
    params: dict[str, Any] = Field(description="What the message needs, in no language.")
    message: str = Field(description="The proposal in the request's language.")


class SchemeFiguresRead(BaseModel):
    """Every figure of a scheme that meets the rules."""

    kit_code: str
    transformer_id: str = Field(description="The supplying transformer's code.")
    transformer_rated_kva: float
    transformer_spare_kva_before: float
    transformer_spare_kva_after: float
    distance_m: float
    route_length_m: float
    route_method: Literal["along_line", "straight_line"]
    detour_factor: float | None
    laying_method: str
    cable: CableCheckRead
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
    bill_of_materials: list[BomLineRead]
    cables_considered: list[CableCheckRead]


class SchemeRead(BaseModel):
    """The engine's answer for an order, as saved."""

    id: int
    order_id: int
    status: str
    accepted: bool
    created_at: datetime
    category: str
    phases: int
    capacity_kw: float
    cos_phi: float
    load_current_a: float
    load_kva: float
    kit_code: str | None
    scheme: SchemeFiguresRead | None
    failures: list[RuleFailureRead]
    white_list: WhiteListRead | None
    proposals: list[str] = Field(
        description="The proposals' texts in the request's language (the messages of "
        "proposal_messages; English in answers saved before them)."
    )
    proposal_messages: list[ProposalRead] = Field(
        default_factory=list,
        description="The same proposals with their keys and params (empty in answers saved "
        "before them).",
    )

    @classmethod
    def of(cls, row: SupplyScheme, language: str = messages.DEFAULT_LANGUAGE) -> SchemeRead:
        answer: dict[str, Any] = dict(row.answer)
        failures = [RuleFailureRead.of(f, language) for f in answer.pop("failures", [])]
        white = answer.pop("white_list", None)
        english: list[str] = list(answer.pop("proposals", []))
        stored = answer.pop("proposal_messages", None) or []
        proposal_messages = [
            ProposalRead(
                code=p["code"], params=p.get("params") or {},
                message=messages.render(p["code"], p.get("params") or {}, language),
            )
            for p in stored
        ]
        return cls(
            id=row.id, order_id=row.order_id, status=row.status,
            accepted=answer.get("scheme") is not None, created_at=row.created_at,
            failures=failures,
            white_list=WhiteListRead.of(white, language) if white else None,
            proposals=[p.message for p in proposal_messages] if proposal_messages else english,
            proposal_messages=proposal_messages,
            **answer,
        )
