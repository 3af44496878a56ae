"""What the contract needs from the order's accepted supply scheme (the schemes slice)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.orm import Session

from field_api.errors import InvalidTransition
from field_api.schemes import service as schemes
from field_api.schemes.models import SupplyScheme
from field_api.work_orders.models import WorkOrder
from standard_kits.loader import load_catalogue


@dataclass(frozen=True)
class SchemeTerms:
    """The scheme's figures printed on the contract, as display text."""

    supply_point: str
    cable: str
    breaker: str
    meter: str
    metering: Literal["direct", "ct"]
    kit_code: str
    route_length_m: float
    terms: tuple[str, ...] = field(default=())


def _material_label(code: str | None) -> str | None:
    if not code:
        return None
    material = load_catalogue().get_material(code)
    return f"{material.name.zh}（{code}）" if material is not None else code


# A catalogue item as the contract prints it: "<Chinese name>（<code>）".
_LABELLED = re.compile(r"(?P<zh>[^，（）]+)（(?P<code>[A-Za-z0-9][A-Za-z0-9._/-]*)）")
_SUPPLY_POINT = re.compile(r"^(?P<tx>\S+) 配电变压器（公用(?:，(?P<kva>[0-9.]+) kVA)?）低压出线$")
# The one other word the contract adds to a meter: a CT-connected meter's current transformers.
_CT_ZH, _CT_EN = "，电流互感器 ", ", current transformers "


def _english_material(match: re.Match[str]) -> str:
    material = load_catalogue().get_material(match["code"])
    if material is None:
        return match.group(0)
    return f"{material.name.en} ({match['code']})"


def term_in_english(key: str, text: str) -> str:
    """A contract term as an English reader sees it: catalogue items by their English name
    (the Chinese document stays as signed; this is display only). Unknown text is kept."""
    if key == "supply_point":
        point = _SUPPLY_POINT.match(text)
        if point is None:
            return text
        kva = f", {point['kva']} kVA" if point["kva"] else ""
        return f"{point['tx']} distribution transformer (public{kva}), LV outlet"
    if key not in ("cable", "breaker", "meter"):
        return text
    parts = text.split(_CT_ZH)
    return _CT_EN.join(_LABELLED.sub(_english_material, part) for part in parts)


def terms_of(scheme: SupplyScheme) -> SchemeTerms:
    """Contract terms from a scheme row (raises InvalidTransition when a figure is missing)."""
    missing = [
        name
        for name, value in (
            ("kit", scheme.kit_code),
            ("cable", scheme.cable_code),
            ("breaker", scheme.breaker_code),
            ("meter", scheme.meter_code),
            ("metering", scheme.metering),
            ("route length", scheme.route_length_m),
            ("transformer", scheme.transformer_code),
        )
        if value is None
    ]
    if missing or scheme.metering not in ("direct", "ct"):
        raise InvalidTransition(
            f"the accepted scheme {scheme.id} lacks {', '.join(missing) or 'a metering mode'}; "
            "answer the scheme again",
            code="contract.scheme_terms_missing",
            params={"scheme_id": scheme.id, "missing": list(missing)},
        )
    kva = f"，{scheme.transformer_rated_kva:g} kVA" if scheme.transformer_rated_kva else ""
    meter = _material_label(scheme.meter_code) or ""
    if scheme.metering == "ct" and scheme.ct_code:
        meter = f"{meter}，电流互感器 {_material_label(scheme.ct_code)}"
    return SchemeTerms(
        supply_point=f"{scheme.transformer_code} 配电变压器（公用{kva}）低压出线",
        cable=_material_label(scheme.cable_code) or "",
        breaker=_material_label(scheme.breaker_code) or "",
        meter=meter,
        metering="ct" if scheme.metering == "ct" else "direct",
        kit_code=scheme.kit_code or "",
        route_length_m=float(scheme.route_length_m or 0.0),
    )


def scheme_terms_for(session: Session, order: WorkOrder) -> SchemeTerms:
    """The accepted scheme of ``order`` as contract terms; 409 when none was accepted."""
    scheme = schemes.accepted_for_order(session, order.id)
    if scheme is None:
        raise InvalidTransition(
            f"work order {order.id} has no accepted supply scheme",
            code="scheme.none_accepted",
            params={"order_id": order.id},
        )
    return terms_of(scheme)
