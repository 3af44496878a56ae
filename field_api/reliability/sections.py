"""The register as planned outages see it: a switch's feeder section and its customers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.errors import NotFound, ValidationFailed
from field_api.network.models import Transformer
from field_api.reliability.models import Customer, FeederSection
from field_api.reliability.register import on_register, served_on
from field_api.reliability.rules import Area


def section(session: Session, switch_code: str) -> tuple[str, str, list[str]]:
    """(feeder, district, transformer codes) of the feeder section below ``switch_code``."""
    rows = session.execute(
        select(FeederSection.feeder, FeederSection.district, Transformer.code)
        .join(Transformer, Transformer.id == FeederSection.transformer_id)
        .where(FeederSection.switch_code == switch_code)
        .order_by(Transformer.code)
    ).all()
    if not rows:
        raise ValidationFailed(
            f"switch {switch_code} has no feeder section",
            code="reliability.section_unknown", params={"switch_code": switch_code},
        )
    return rows[0][0], rows[0][1], [code for _, _, code in rows]


def customers_of(session: Session, codes: Sequence[str], day: date) -> list[Customer]:
    """The register's accounts on these transformers on ``day``."""
    if not codes:
        return []
    return list(session.execute(
        select(Customer).join(Transformer, Transformer.id == Customer.transformer_id)
        .where(Transformer.code.in_(list(codes)), on_register(day))
        .order_by(Customer.id)
    ).scalars())


def district_customers(session: Session, district: str, day: date) -> dict[Area, int]:
    """The district's accounts on the register on ``day``, per area."""
    return {area: customers for (d, area), (customers, _) in served_on(session, day).items()
            if d == district}


def require_district(session: Session, district: str) -> None:
    """404 unless some feeder section is in ``district``."""
    found = session.execute(
        select(FeederSection.id).where(FeederSection.district == district).limit(1)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"district {district} has no feeder section",
                       code="reliability.district_unknown", params={"district": district})
