"""Use cases of supply schemes: compute one for an order, save the accepted one, read them."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common.actors import Principal
from field_api.errors import InvalidTransition, NotFound, ValidationFailed
from field_api.network import service as network
from field_api.network.models import Transformer
from field_api.schemes import rules
from field_api.schemes.models import SupplyScheme
from field_api.schemes.schemas import SchemeCreate
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from standard_kits import load_catalogue

SCHEMING_STAGES = frozenset({Stage.surveyed, Stage.scheme_answered})


def accepted_for_order(session: Session, order_id: int) -> SupplyScheme | None:
    """The order's accepted scheme, or None (what contract, kits and checks build on)."""
    return session.execute(
        select(SupplyScheme)
        .where(SupplyScheme.order_id == order_id, SupplyScheme.status == "accepted")
        .order_by(SupplyScheme.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def accepted_for_order_or_raise(session: Session, order_id: int) -> SupplyScheme:
    """The order's accepted scheme; 409 when there is none yet."""
    found = accepted_for_order(session, order_id)
    if found is None:
        raise InvalidTransition(
            f"work order {order_id} has no accepted supply scheme",
            code="scheme.none_accepted",
            params={"order_id": order_id},
        )
    return found


def accepted_for_actor(session: Session, order_id: int, *, actor: Principal) -> SupplyScheme:
    """The accepted scheme of an order the actor may read; 409 when there is none."""
    orders.get_for_actor(session, order_id, actor, write=False)
    return accepted_for_order_or_raise(session, order_id)


def list_for_order(session: Session, order_id: int, *, actor: Principal) -> list[SupplyScheme]:
    """Every scheme computed for an order the actor may read, oldest first."""
    orders.get_for_actor(session, order_id, actor, write=False)
    return list(session.execute(
        select(SupplyScheme).where(SupplyScheme.order_id == order_id).order_by(SupplyScheme.id)
    ).scalars())


def get_or_raise(session: Session, scheme_id: int, *, actor: Principal) -> SupplyScheme:
    """One scheme of an order the actor may read; 404 when unknown."""
    row = session.get(SupplyScheme, scheme_id)
    if row is None:
        raise NotFound(
            f"supply scheme {scheme_id} not found",
            code="scheme.not_found",
            params={"scheme_id": scheme_id},
        )
    orders.get_for_actor(session, row.order_id, actor, write=False)
    return row


def request_scheme(
    session: Session, order_id: int, data: SchemeCreate, *, actor: Principal
) -> SupplyScheme:
    """Compute the scheme for an order; a passing one (with ``accept``) becomes its scheme.

    The order must be surveyed (or already answered: a new accepted scheme supersedes the old
    one). Accepting books the load on the chosen transformer and moves the order to
    ``scheme_answered``. A refusal is saved too, with the failed rules and the white-list
    proposal, so the crew can park the order on the white list with that reason.
    """
    order = _lock_for_scheming(session, order_id, actor=actor)
    lon = data.lon if data.lon is not None else order.lon
    lat = data.lat if data.lat is not None else order.lat
    answer = _design(session, order, data, lon=lon, lat=lat)
    scheme = answer.scheme
    take = scheme is not None and data.accept
    status = "accepted" if take else ("proposed" if scheme is not None else "refused")
    transformer = network.get_by_code(session, scheme.transformer_id) if scheme else None
    row = _scheme_row(
        order, answer, transformer, status=status, lon=lon, lat=lat, actor=actor
    )
    if take:
        previous = accepted_for_order(session, order.id)
        if previous is not None:
            previous.status = "superseded"
            audit.record(session, actor=actor, action="supply_scheme.supersede", entity=previous)
    session.add(row)
    audit.record(session, actor=actor, action=f"supply_scheme.{status}", entity=row)
    if take and transformer is not None:
        network.commit_connection(
            session, order_id=order.id, transformer=transformer, load_kva=answer.load_kva,
            actor=actor,
        )
        if order.stage == Stage.surveyed:
            orders.transition(
                session, order, Stage.scheme_answered, actor=actor, data={"scheme_id": row.id}
            )
    return row


def _lock_for_scheming(session: Session, order_id: int, *, actor: Principal) -> WorkOrder:
    """The order, locked, when the actor may write it and it is at a scheming stage."""
    order = orders.get_for_actor(session, order_id, actor, write=True)
    # one scheme decision per order at a time (PostgreSQL row lock; SQLite serialises writers)
    session.execute(
        select(WorkOrder).where(WorkOrder.id == order.id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if order.stage not in SCHEMING_STAGES:
        raise InvalidTransition(
            f"order {order.id} is {order.stage.value}: a scheme is requested once surveyed "
            "and before the contract is signed",
            code="scheme.wrong_stage",
            params={"order_id": order.id, "stage": order.stage.value},
        )
    return order


def _design(
    session: Session, order: WorkOrder, data: SchemeCreate, *, lon: float, lat: float
) -> rules.SchemeAnswer:
    """Run the scheme engine for the order at ``lon``/``lat`` on the network around it."""
    catalogue = load_catalogue()
    settings = rules.settings_from(catalogue)
    request = rules.SchemeRequest(
        category=order.category.value, phases=order.phases, capacity_kw=order.capacity_kw,
        lon=lon, lat=lat, laying_method=data.laying_method, preferred_cable=data.preferred_cable,
    )
    try:
        net = network.engine_network(
            session, lon, lat, radius_m=settings.max_supply_radius_m, exclude_order_id=order.id
        )
        return rules.design_scheme(request, net, catalogue, settings=settings)
    except rules.SchemeInputError as exc:
        raise ValidationFailed(
            str(exc),
            code="scheme.input_invalid",
            params={"reason": str(exc)},
        ) from exc


def _scheme_row(
    order: WorkOrder, answer: rules.SchemeAnswer, transformer: Transformer | None, *,
    status: str, lon: float, lat: float, actor: Principal,
) -> SupplyScheme:
    """The scheme row to save: the engine's answer and, when it passed, the scheme's figures."""
    scheme = answer.scheme
    return SupplyScheme(
        order_id=order.id, status=status, kit_code=answer.kit_code,
        transformer_id=transformer.id if transformer else None,
        transformer_code=scheme.transformer_id if scheme else None,
        transformer_rated_kva=scheme.transformer_rated_kva if scheme else None,
        lon=lon, lat=lat, load_current_a=answer.load_current_a, load_kva=answer.load_kva,
        cos_phi=answer.cos_phi,
        route_length_m=scheme.route_length_m if scheme else None,
        cable_code=scheme.cable.code if scheme else None,
        cable_section_mm2=scheme.cable.section_mm2 if scheme else None,
        breaker_code=scheme.breaker_code if scheme else None,
        breaker_rating_a=scheme.breaker_rating_a if scheme else None,
        metering=scheme.metering if scheme else None,
        meter_code=scheme.meter_code if scheme else None,
        ct_code=scheme.ct_code if scheme else None,
        ct_primary_a=scheme.ct_primary_a if scheme else None,
        voltage_drop_pct=scheme.cable.voltage_drop_pct if scheme else None,
        terminal_voltage_v=scheme.terminal_voltage_v if scheme else None,
        white_list_proposed=answer.white_list is not None,
        bill_of_materials=[_json(dataclasses.asdict(b)) for b in scheme.bill_of_materials]
        if scheme else [],
        answer=_json(dataclasses.asdict(answer)),
        created_by=actor.user_id,
    )


def _json(value: Any) -> Any:
    """JSON-safe copy: tuples become lists, non-finite floats (an unbounded length) None."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
