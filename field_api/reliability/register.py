"""The customer register: feeder sections, customer accounts, monthly snapshots.

Imports are all rows or none: every row is checked first and a file with any bad row is
refused whole (422 ``reliability.rows_invalid`` listing each row and what is wrong with it).
Names and phones are stored whole (notices are sent to them) and only ever leave masked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.errors import Forbidden, ValidationFailed
from field_api.network.models import Transformer
from field_api.paging import PageParams
from field_api.privacy import mask_name, mask_phone
from field_api.reliability import rules
from field_api.reliability.models import (
    Customer,
    FeederSection,
    RegisterSnapshot,
    ReliabilityImport,
)
from field_api.reliability.rules import Area, RowError
from field_api.reliability.schemas import CustomerRead, ImportRead, SnapshotRead

REGISTER_ROLES = (Role.admin,)
READ_ROLES = (Role.admin, Role.planner, Role.dispatcher)


def require(actor: Principal, roles: Sequence[Role], what: str) -> None:
    """403 unless ``actor`` has one of ``roles``."""
    if actor.role not in roles:
        raise Forbidden(
            f"role {actor.role.value} may not {what}",
            code="reliability.role_forbidden",
            params={"role": actor.role.value, "allowed": sorted(r.value for r in roles)},
        )


def _file(data: bytes, columns: Sequence[str]) -> None:
    try:
        rules.read_csv(data, columns)
    except rules.ReliabilityFileError as exc:
        raise ValidationFailed(
            str(exc), code="reliability.file_invalid", params={"reason": str(exc)}
        ) from exc


def refuse_rows(errors: Sequence[RowError], filename: str) -> None:
    """422 listing every bad row; nothing is written."""
    if not errors:
        return
    raise ValidationFailed(
        {
            "message": f"{len(errors)} row(s) of {filename} are invalid; nothing was imported",
            "rows": [{"row": e.row, "errors": list(e.errors)}
                     for e in sorted(errors, key=lambda e: e.row)],
        },
        code="reliability.rows_invalid",
        params={"count": len(errors), "filename": filename},
    )


def transformers_by_code(session: Session, codes: set[str]) -> dict[str, Transformer]:
    if not codes:
        return {}
    rows = session.execute(select(Transformer).where(Transformer.code.in_(codes))).scalars()
    return {t.code: t for t in rows}


def _record_import(
    session: Session, kind: str, data: bytes, filename: str, counts: dict[str, Any],
    actor: Principal,
) -> ReliabilityImport:
    record = ReliabilityImport(
        kind=kind, filename=filename[:255], sha256=hashlib.sha256(data).hexdigest(),
        counts=counts, actor_id=actor.user_id, at=clock.now(),
    )
    session.add(record)
    audit.record(session, actor=actor, action=f"reliability.import_{kind}", entity=record)
    return record


def import_sections(
    session: Session, data: bytes, *, filename: str, actor: Principal
) -> ImportRead:
    """Feeder sections (switch → transformer); the transformers gain feeder and district."""
    require(actor, REGISTER_ROLES, "import feeder sections")
    _file(data, rules.SECTION_COLUMNS)
    parsed = rules.parse_sections(data)
    known = transformers_by_code(session, {r.transformer_code for r in parsed.rows})
    errors = list(parsed.errors) + [
        RowError(r.row, (f"transformer {r.transformer_code} is not in the network register",))
        for r in parsed.rows if r.transformer_code not in known
    ]
    refuse_rows(errors, filename)
    ids = [known[r.transformer_code].id for r in parsed.rows]
    existing = {
        s.transformer_id: s for s in session.execute(
            select(FeederSection).where(FeederSection.transformer_id.in_(ids))
        ).scalars()
    } if ids else {}
    now = clock.now()
    for row in parsed.rows:
        transformer = known[row.transformer_code]
        section = existing.get(transformer.id)
        if section is None:
            section = FeederSection(transformer_id=transformer.id)
            session.add(section)
        section.switch_code, section.feeder, section.district = (
            row.switch_code, row.feeder, row.district
        )
        section.updated_at = now
        transformer.feeder, transformer.district, transformer.updated_at = (
            row.feeder, row.district, now
        )
    created = len(parsed.rows) - len(existing)
    counts = {"created": created, "updated": len(existing)}
    record = _record_import(session, "sections", data, filename, counts, actor)
    return ImportRead(kind="sections", import_id=record.id, **counts)


def _customer_row_errors(
    row: rules.CustomerRow, known: dict[str, Transformer], sections: dict[int, FeederSection]
) -> list[str]:
    transformer = known.get(row.transformer_code)
    if transformer is None:
        return [f"transformer {row.transformer_code} is not in the network register"]
    section = sections.get(transformer.id)
    if section is None:
        return [f"transformer {row.transformer_code} has no feeder section: import the "
                "feeder sections first"]
    if row.switch_code and row.switch_code != section.switch_code:
        return [f"switch {row.switch_code} does not feed transformer {row.transformer_code} "
                f"(its switch is {section.switch_code})"]
    return []


def import_customers(
    session: Session, data: bytes, *, filename: str, actor: Principal
) -> ImportRead:
    """Customer accounts (new or updated by account number), all rows or none."""
    require(actor, REGISTER_ROLES, "import the customer register")
    _file(data, rules.CUSTOMER_COLUMNS)
    parsed = rules.parse_customers(data)
    known = transformers_by_code(session, {r.transformer_code for r in parsed.rows})
    sections = {
        s.transformer_id: s for s in session.execute(select(FeederSection).where(
            FeederSection.transformer_id.in_([t.id for t in known.values()])
        )).scalars()
    } if known else {}
    errors = list(parsed.errors)
    for row in parsed.rows:
        problems = _customer_row_errors(row, known, sections)
        if problems:
            errors.append(RowError(row.row, tuple(problems)))
    refuse_rows(errors, filename)
    accounts = [r.account_no for r in parsed.rows]
    existing = {
        c.account_no: c for c in session.execute(
            select(Customer).where(Customer.account_no.in_(accounts))
        ).scalars()
    } if accounts else {}
    now = clock.now()
    for row in parsed.rows:
        section = sections[known[row.transformer_code].id]
        customer = existing.get(row.account_no) or Customer(account_no=row.account_no)
        session.add(customer)
        customer.name, customer.phone = row.name, row.phone
        customer.supply_point, customer.supply_kind = row.supply_point, row.supply_kind
        customer.transformer_id = section.transformer_id
        customer.switch_code, customer.feeder = section.switch_code, section.feeder
        customer.district, customer.area = section.district, row.area
        customer.connected_on, customer.removed_on = row.connected_on, row.removed_on
        customer.updated_at = now
    counts = {"created": len(parsed.rows) - len(existing), "updated": len(existing)}
    record = _record_import(session, "customers", data, filename, counts, actor)
    return ImportRead(kind="customers", import_id=record.id, **counts)


def customers_page(
    session: Session, actor: Principal, page: PageParams, *, district: str | None = None
) -> list[CustomerRead]:
    """The register, names and phones masked (admins, planners, dispatchers)."""
    require(actor, READ_ROLES, "read the customer register")
    query = select(Customer, Transformer.code).join(
        Transformer, Transformer.id == Customer.transformer_id
    ).order_by(Customer.account_no)
    if district is not None:
        query = query.where(Customer.district == district)
    return [read_customer(c, code) for c, code in page.rows(session, query)]


def all_customers(
    session: Session, actor: Principal, *, district: str | None = None
) -> list[CustomerRead]:
    """The whole register for a CSV export (masked)."""
    require(actor, READ_ROLES, "read the customer register")
    query = select(Customer, Transformer.code).join(
        Transformer, Transformer.id == Customer.transformer_id
    ).order_by(Customer.account_no)
    if district is not None:
        query = query.where(Customer.district == district)
    return [read_customer(c, code) for c, code in session.execute(query)]


def read_customer(customer: Customer, transformer_code: str) -> CustomerRead:
    return CustomerRead(
        account_no=customer.account_no,
        name_masked=mask_name(customer.name),
        phone_masked=mask_phone(customer.phone),
        supply_point=customer.supply_point,
        supply_kind=customer.supply_kind,
        transformer_code=transformer_code,
        switch_code=customer.switch_code,
        feeder=customer.feeder,
        district=customer.district,
        area=customer.area,
        connected_on=customer.connected_on,
        removed_on=customer.removed_on,
    )


# --- served counts and snapshots ----------------------------------------------------------------

Served = dict[tuple[str, Area], tuple[int, int]]


def on_register(day: date) -> ColumnElement[bool]:
    """The accounts on the register on ``day``: connected by then and not yet removed."""
    return and_(Customer.connected_on <= day,
                or_(Customer.removed_on.is_(None), Customer.removed_on > day))


def served_on(session: Session, day: date) -> Served:
    """Customers and distinct supply points on the register on ``day``, per district and area."""
    rows = session.execute(
        select(
            Customer.district, Customer.area, func.count(Customer.id),
            func.count(func.distinct(Customer.supply_point)),
        )
        .where(on_register(day))
        .group_by(Customer.district, Customer.area)
    )
    return {(d, Area(a)): (int(c), int(p)) for d, a, c, p in rows}


def month_end(month: date) -> date:
    return rules.next_month(month) - timedelta(days=1)


def snapshot_month(session: Session, month: date, *, actor: Principal | None) -> list[SnapshotRead]:
    """Write (or rewrite) the month's snapshot from the register as it stands at the month's
    end (or today, for the current month)."""
    if actor is not None:
        require(actor, REGISTER_ROLES, "snapshot the register")
    month = rules.month_start(month)
    today = clock.china_date(clock.now())
    if month > today:
        raise ValidationFailed(
            f"{month:%Y-%m} has not begun", code="reliability.month_in_future",
            params={"month": f"{month:%Y-%m}"},
        )
    day = min(month_end(month), today)
    counts = served_on(session, day)
    stored = {
        (s.district, s.area): s for s in session.execute(
            select(RegisterSnapshot).where(RegisterSnapshot.month == month)
        ).scalars()
    }
    now = clock.now()
    for (district, area), (customers, points) in counts.items():
        snap = stored.get((district, area)) or RegisterSnapshot(
            month=month, district=district, area=area
        )
        session.add(snap)
        snap.customers, snap.supply_points, snap.taken_at = customers, points, now
    session.flush()
    return [
        SnapshotRead(month=s.month, district=s.district, area=s.area, customers=s.customers,
                     supply_points=s.supply_points, taken_at=s.taken_at)
        for s in session.execute(
            select(RegisterSnapshot).where(RegisterSnapshot.month == month)
            .order_by(RegisterSnapshot.district, RegisterSnapshot.area)
        ).scalars()
    ]


def snapshot_current_month(session: Session) -> int:
    """The periodic job: this month's snapshot, kept current; returns rows written."""
    return len(snapshot_month(session, clock.china_date(clock.now()), actor=None))


def stored_snapshots(session: Session, months: Sequence[date]) -> dict[date, Served]:
    """Stored snapshots of ``months`` (a month without one is absent)."""
    out: dict[date, Served] = {}
    for snap in session.execute(
        select(RegisterSnapshot).where(RegisterSnapshot.month.in_(list(months)))
    ).scalars():
        out.setdefault(snap.month, {})[(snap.district, Area(snap.area))] = (
            snap.customers, snap.supply_points
        )
    return out


def served_by_month(session: Session, months: Sequence[date]) -> dict[date, Served]:
    """The denominator of each month: its snapshot, else the register at the month's end."""
    stored = stored_snapshots(session, months)
    today = clock.china_date(clock.now())
    return {
        m: stored[m] if m in stored else served_on(session, min(month_end(m), today))
        for m in months
    }
