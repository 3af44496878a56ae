"""Outage records: open, restore in steps, close, approve; CSV import.

Dispatchers (and admins) record and close outages; planners (and admins) approve them. Times
are the server's (UTC); each read model shows them in Asia/Shanghai beside. The customers
affected come from the register: a feeder's transformers, a switch's feeder section, named
transformers, or ledger assets (an asset named like a switch stands for its section, any other
for its line's feeder). An override (count, reason, district, area) replaces them where the
register is incomplete. Every write is recorded on the audit chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import ValidationError as PydanticError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.errors import Conflict, DomainError, NotFound, ValidationFailed
from field_api.inspections.models import LedgerAsset
from field_api.network.models import Transformer
from field_api.paging import PageParams
from field_api.reliability import rules
from field_api.reliability.models import Customer, FeederSection, Outage, OutageSegment
from field_api.reliability.register import READ_ROLES, on_register, refuse_rows, require
from field_api.reliability.rules import Area
from field_api.reliability.schemas import (
    OutageClose,
    OutageCreate,
    OutageImportRead,
    OutageRead,
    RestorationCreate,
    SegmentRead,
)

DISPATCH_ROLES = (Role.dispatcher, Role.admin)
APPROVE_ROLES = (Role.planner, Role.admin)


def _invalid(reason: str) -> ValidationFailed:
    return ValidationFailed(reason, code="reliability.outage_invalid", params={"reason": reason})


def _local(moment: datetime | None) -> str | None:
    return None if moment is None else clock.to_china(moment).isoformat(timespec="seconds")


def _time(value: datetime | None, what: str) -> datetime:
    """A given time (a naive one is China time) or now; never in the future."""
    now = clock.now()
    if value is None:
        return now
    if value.tzinfo is None:
        value = value.replace(tzinfo=clock.CHINA_TZ)
    if value > now:
        raise _invalid(f"{what} is in the future")
    return value


# --- which transformers are out -----------------------------------------------------------------


def _codes_of_switches(session: Session, switches: set[str]) -> dict[str, list[str]]:
    rows = session.execute(
        select(FeederSection.switch_code, Transformer.code)
        .join(Transformer, Transformer.id == FeederSection.transformer_id)
        .where(FeederSection.switch_code.in_(switches))
    )
    found: dict[str, list[str]] = {}
    for switch, code in rows:
        found.setdefault(switch, []).append(code)
    return found


def _codes_of_feeders(session: Session, feeders: set[str]) -> dict[str, list[str]]:
    rows = session.execute(
        select(Transformer.feeder, Transformer.code).where(Transformer.feeder.in_(feeders))
    )
    found: dict[str, list[str]] = {}
    for feeder, code in rows:
        found.setdefault(str(feeder), []).append(code)
    return found


def _asset_codes(session: Session, asset_ids: Sequence[str]) -> set[str]:
    if not asset_ids:
        return set()
    assets = {a.id: a for a in session.execute(
        select(LedgerAsset).where(LedgerAsset.id.in_(list(asset_ids)))
    ).scalars()}
    missing = sorted(set(asset_ids) - set(assets))
    if missing:
        raise _invalid("unknown ledger assets: " + ", ".join(missing))
    switches = _codes_of_switches(session, set(assets))
    feeders = _codes_of_feeders(session, {a.line_id for a in assets.values() if a.line_id})
    codes: set[str] = set()
    for asset in assets.values():
        found = switches.get(asset.id) or feeders.get(asset.line_id or "")
        if not found:
            raise _invalid(f"ledger asset {asset.id} is neither a switch nor on a known feeder")
        codes |= set(found)
    return codes


def affected_transformers(session: Session, body: OutageCreate) -> set[str]:
    """Codes of the transformers the outage takes out (unknown names refused)."""
    codes = set(body.transformer_codes)
    known = {t for (t,) in session.execute(
        select(Transformer.code).where(Transformer.code.in_(codes))
    )} if codes else set()
    if codes - known:
        raise _invalid("unknown transformers: " + ", ".join(sorted(codes - known)))
    if body.feeder:
        found = _codes_of_feeders(session, {body.feeder}).get(body.feeder)
        if not found:
            raise _invalid(f"feeder {body.feeder} has no transformers")
        codes |= set(found)
    if body.switch_code:
        found = _codes_of_switches(session, {body.switch_code}).get(body.switch_code)
        if not found:
            raise _invalid(f"switch {body.switch_code} has no feeder section")
        codes |= set(found)
    return codes | _asset_codes(session, body.asset_ids)


def derive_segments(session: Session, codes: set[str], at: datetime) -> list[OutageSegment]:
    """One segment per transformer, district and area: the register's customers on ``at``."""
    if not codes:
        return []
    day = clock.china_date(at)
    rows = session.execute(
        select(
            Transformer.code, Customer.district, Customer.area, func.count(Customer.id),
            func.count(func.distinct(Customer.supply_point)),
        )
        .join(Transformer, Transformer.id == Customer.transformer_id)
        .where(Transformer.code.in_(codes), on_register(day))
        .group_by(Transformer.code, Customer.district, Customer.area)
        .order_by(Transformer.code, Customer.district, Customer.area)
    )
    return [
        OutageSegment(transformer_code=code, district=d, area=Area(a), customers=int(c),
                      supply_points=int(p))
        for code, d, a, c, p in rows
    ]


# --- writes -------------------------------------------------------------------------------------


def build_outage(session: Session, body: OutageCreate, actor: Principal) -> Outage:
    """Check and add an outage with its segments (flushed, not yet recorded)."""
    start = _time(body.start_at, "start_at")
    end = None if body.end_at is None else _time(body.end_at, "end_at")
    if end is not None and end < start:
        raise _invalid("end_at is before start_at")
    if body.ref is not None and session.scalar(select(Outage.id).where(Outage.ref == body.ref)):
        raise Conflict(f"outage {body.ref} is already recorded",
                       code="reliability.outage_exists", params={"ref": body.ref})
    codes = affected_transformers(session, body)
    if body.override_customers is not None:
        assert body.override_district is not None and body.override_area is not None
        segments = [OutageSegment(
            transformer_code=None, district=body.override_district, area=body.override_area,
            customers=body.override_customers,
            supply_points=body.override_supply_points or body.override_customers,
        )]
    else:
        segments = derive_segments(session, codes, start)
    if not segments:
        raise _invalid("no customer on the register is affected: name a feeder, switch, "
                       "transformers or assets with customers, or give an override with a reason")
    outage = Outage(
        ref=body.ref, kind=body.kind, cause=body.cause, start_at=start, end_at=end,
        feeder=body.feeder, switch_code=body.switch_code, transformer_codes=sorted(codes),
        asset_ids=list(body.asset_ids), override_customers=body.override_customers,
        override_reason=body.override_reason, note=body.note, recorded_by=actor.user_id,
        closed_by=actor.user_id if end is not None else None, created_at=clock.now(),
    )
    session.add(outage)
    session.flush()
    for segment in segments:
        segment.outage_id = outage.id
        segment.restored_at = end
        session.add(segment)
    session.flush()
    return outage


def record_outage(session: Session, body: OutageCreate, actor: Principal) -> OutageRead:
    """A new outage (dispatchers, admins)."""
    require(actor, DISPATCH_ROLES, "record outages")
    outage = build_outage(session, body, actor)
    audit.record(session, actor=actor, action="reliability.outage_recorded", entity=outage)
    return read_outage(session, outage)


def _open_outage(session: Session, outage_id: int) -> Outage:
    outage = _get(session, outage_id)
    if outage.end_at is not None:
        raise Conflict(f"outage {outage_id} is closed", code="reliability.outage_closed",
                       params={"outage_id": outage_id})
    return outage


def _get(session: Session, outage_id: int) -> Outage:
    outage = session.get(Outage, outage_id)
    if outage is None:
        raise NotFound(f"outage {outage_id} does not exist", code="reliability.outage_not_found",
                       params={"outage_id": outage_id})
    return outage


def _segments(session: Session, outage_id: int) -> list[OutageSegment]:
    return list(session.execute(
        select(OutageSegment).where(OutageSegment.outage_id == outage_id)
        .order_by(OutageSegment.id)
    ).scalars())


def restore(
    session: Session, outage_id: int, body: RestorationCreate, actor: Principal
) -> OutageRead:
    """A restoration step: these transformers' customers are back at ``at``; once everyone is
    back the outage closes at that time."""
    require(actor, DISPATCH_ROLES, "restore outages")
    outage = _open_outage(session, outage_id)
    at = _time(body.at, "at")
    if at < outage.start_at:
        raise _invalid("the restoration is before the outage's start")
    segments = _segments(session, outage_id)
    out = {s.transformer_code for s in segments if s.restored_at is None}
    wrong = sorted(set(body.transformer_codes) - out)
    if wrong:
        raise _invalid("not out in this outage (or already restored): " + ", ".join(wrong))
    for segment in segments:
        if segment.transformer_code in body.transformer_codes:
            segment.restored_at = at
    if all(s.restored_at is not None for s in segments):
        outage.end_at, outage.closed_by = at, actor.user_id
    audit.record(session, actor=actor, action="reliability.outage_restored", entity=outage,
                 detail=",".join(sorted(body.transformer_codes)))
    return read_outage(session, outage)


def close(session: Session, outage_id: int, body: OutageClose, actor: Principal) -> OutageRead:
    """Everyone still out is back at ``end_at``: the outage is closed."""
    require(actor, DISPATCH_ROLES, "close outages")
    outage = _open_outage(session, outage_id)
    end = _time(body.end_at, "end_at")
    segments = _segments(session, outage_id)
    latest = max([outage.start_at, *(s.restored_at for s in segments if s.restored_at)])
    if end < latest:
        raise _invalid("end_at is before the start or an earlier restoration step")
    for segment in segments:
        if segment.restored_at is None:
            segment.restored_at = end
    outage.end_at, outage.closed_by = end, actor.user_id
    audit.record(session, actor=actor, action="reliability.outage_closed", entity=outage)
    return read_outage(session, outage)


def approve(session: Session, outage_id: int, actor: Principal) -> OutageRead:
    """A planner approves a closed outage record for the indices' publication."""
    require(actor, APPROVE_ROLES, "approve outages")
    outage = _get(session, outage_id)
    if outage.end_at is None:
        raise Conflict(f"outage {outage_id} is still open", code="reliability.outage_open",
                       params={"outage_id": outage_id})
    if outage.approved_at is None:
        outage.approved_by, outage.approved_at = actor.user_id, clock.now()
        audit.record(session, actor=actor, action="reliability.outage_approved", entity=outage)
    return read_outage(session, outage)


# --- reads --------------------------------------------------------------------------------------


def read_outage(session: Session, outage: Outage) -> OutageRead:
    segments = _segments(session, outage.id)
    return OutageRead(
        id=outage.id, ref=outage.ref, kind=outage.kind, cause=outage.cause,
        start_at=outage.start_at, start_at_local=_local(outage.start_at) or "",
        end_at=outage.end_at, end_at_local=_local(outage.end_at), open=outage.end_at is None,
        feeder=outage.feeder, switch_code=outage.switch_code,
        transformer_codes=list(outage.transformer_codes), asset_ids=list(outage.asset_ids),
        customers=sum(s.customers for s in segments),
        supply_points=sum(s.supply_points for s in segments),
        override_reason=outage.override_reason, approved=outage.approved_at is not None,
        segments=[
            SegmentRead(transformer_code=s.transformer_code, district=s.district, area=s.area,
                        customers=s.customers, supply_points=s.supply_points,
                        restored_at=s.restored_at, restored_at_local=_local(s.restored_at))
            for s in segments
        ],
    )


def get_outage(session: Session, outage_id: int, actor: Principal) -> OutageRead:
    require(actor, READ_ROLES, "read outages")
    return read_outage(session, _get(session, outage_id))


def outages_page(
    session: Session, actor: Principal, page: PageParams, *, open_only: bool = False
) -> list[OutageRead]:
    """Outages, newest first (open ones only on request)."""
    require(actor, READ_ROLES, "read outages")
    query = select(Outage).order_by(Outage.start_at.desc(), Outage.id.desc())
    if open_only:
        query = query.where(Outage.end_at.is_(None))
    return [read_outage(session, o) for o in page.select(session, query)]


# --- CSV import ---------------------------------------------------------------------------------

OUTAGE_COLUMNS = (
    "ref", "kind", "cause", "start_at", "end_at", "feeder", "switch_code", "transformer_codes",
    "asset_ids", "override_customers", "override_reason", "override_district", "override_area",
)


def _row_body(row: dict[str, str]) -> OutageCreate:
    """A CSV row as an outage body (lists separated by ``;``, empty cells unset)."""
    values: dict[str, object] = {k: v for k, v in row.items() if k in OUTAGE_COLUMNS and v}
    for name in ("transformer_codes", "asset_ids"):
        if name in values:
            values[name] = [p.strip() for p in str(values[name]).split(";") if p.strip()]
    if "note" in row:
        values["note"] = row["note"]
    return OutageCreate.model_validate(values)


def _pydantic_problems(exc: PydanticError) -> tuple[str, ...]:
    return tuple(
        (".".join(str(p) for p in e["loc"]) + ": " if e["loc"] else "") + e["msg"]
        for e in exc.errors()
    )


def import_outages(
    session: Session, data: bytes, *, filename: str, actor: Principal
) -> OutageImportRead:
    """Outages from CSV (one per row), all rows or none: a file with a bad row is refused
    whole, listing each bad row."""
    require(actor, DISPATCH_ROLES, "import outages")
    try:
        rows = rules.read_csv(data, ("ref", "kind", "cause", "start_at"))
    except rules.ReliabilityFileError as exc:
        raise ValidationFailed(
            str(exc), code="reliability.file_invalid", params={"reason": str(exc)}
        ) from exc
    errors: list[rules.RowError] = []
    created: list[Outage] = []
    for line, row in rows:
        try:
            created.append(build_outage(session, _row_body(row), actor))
        except PydanticError as exc:
            errors.append(rules.RowError(line, _pydantic_problems(exc)))
        except DomainError as exc:
            errors.append(rules.RowError(line, (str(exc.detail),)))
    refuse_rows(errors, filename)
    for outage in created:
        audit.record(session, actor=actor, action="reliability.outage_imported", entity=outage)
    return OutageImportRead(created=len(created), outage_ids=[o.id for o in created])
