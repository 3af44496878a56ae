"""Use cases of the LV network: import, search near a customer, spare capacity, connections."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal
from field_api.errors import NotFound, ValidationFailed
from field_api.network import geo, rules
from field_api.network.models import Connection, LvLine, NetworkImport, Transformer
from field_api.network.schemas import ImportReportRead
from standard_kits import load_catalogue

M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True, slots=True)
class Capacity:
    """A transformer's load position in kVA."""

    rated_kva: float
    base_load_kva: float
    energised_kva: float
    committed_kva: float

    @property
    def spare_kva(self) -> float:
        """Rated minus measured load minus loads energised since the measurement."""
        return self.rated_kva - self.base_load_kva - self.energised_kva

    @property
    def available_kva(self) -> float:
        """Spare minus loads of accepted schemes not yet energised (what a new scheme may use)."""
        return self.spare_kva - self.committed_kva


# --- import -----------------------------------------------------------------------------------


def import_file(
    session: Session, data: bytes, *, filename: str, file_format: str | None = None,
    actor: Principal | None, dry_run: bool = False,
) -> ImportReportRead:
    """Import transformers and LV lines; all rows or none (422 listing each bad row)."""
    try:
        fmt = rules.detect_format(filename, file_format)
        parsed = rules.parse(data, fmt, load_power_factor=_load_power_factor())
    except rules.NetworkFileError as exc:
        raise ValidationFailed(
            str(exc),
            code="network.file_invalid",
            params={"reason": str(exc)},
        ) from exc
    errors = list(parsed.errors)
    file_codes = {t.code for t in parsed.transformers}
    unknown_feeders = {line.transformer_code for line in parsed.lines} - file_codes
    known = _transformers_by_code(session, file_codes | unknown_feeders)
    for line in parsed.lines:
        if line.transformer_code not in file_codes and line.transformer_code not in known:
            errors.append(rules.RowError(line.row, line.code, (
                f"transformer_code {line.transformer_code} is neither in the file nor imported",
            )))
    if errors:
        raise ValidationFailed(
            {
                "message": f"{len(errors)} row(s) of {filename} are invalid; nothing was imported",
                "rows": [
                    {"row": e.row, "code": e.code, "errors": list(e.errors)}
                    for e in sorted(errors, key=lambda e: e.row)
                ],
            },
            code="network.rows_invalid",
            params={"count": len(errors), "filename": filename},
        )
    existing_lines = _lines_by_code(session, {line.code for line in parsed.lines})
    t_new = sum(1 for t in parsed.transformers if t.code not in known)
    l_new = sum(1 for line in parsed.lines if line.code not in existing_lines)
    counts = {
        "transformers_created": t_new,
        "transformers_updated": len(parsed.transformers) - t_new,
        "lines_created": l_new,
        "lines_updated": len(parsed.lines) - l_new,
    }
    if dry_run:
        return ImportReportRead(file_format=fmt, dry_run=True, import_id=None, **counts)
    now = clock.now()
    for row in parsed.transformers:
        t = known.get(row.code)
        if t is None:
            t = Transformer(code=row.code, created_at=now)
            session.add(t)
            known[row.code] = t
        t.name, t.rated_kva, t.base_load_kva = row.name, row.rated_kva, row.load_kva
        t.lon, t.lat, t.updated_at = row.lon, row.lat, now
        t.load_measured_at = row.measured_at or now
    session.flush()
    for line_row in parsed.lines:
        stored = existing_lines.get(line_row.code)
        if stored is None:
            stored = LvLine(code=line_row.code, created_at=now)
            session.add(stored)
        stored.transformer_id = known[line_row.transformer_code].id
        stored.coords = [list(c) for c in line_row.coords]
        stored.updated_at = now
    record = NetworkImport(
        filename=filename[:255], sha256=hashlib.sha256(data).hexdigest(), file_format=fmt,
        counts=counts, actor_id=actor.user_id if actor else None, at=now,
    )
    session.add(record)
    audit.record(session, actor=actor, action="network.import", entity=record)
    return ImportReportRead(file_format=fmt, dry_run=False, import_id=record.id, **counts)


def _load_power_factor() -> float:
    return load_catalogue().design_rules.transformer_load_power_factor.value


def _transformers_by_code(session: Session, codes: set[str]) -> dict[str, Transformer]:
    found: dict[str, Transformer] = {}
    ordered = sorted(codes)
    for i in range(0, len(ordered), 500):  # keep IN lists bounded for big imports
        chunk = ordered[i : i + 500]
        rows = session.execute(select(Transformer).where(Transformer.code.in_(chunk))).scalars()
        found.update({t.code: t for t in rows})
    return found


def _lines_by_code(session: Session, codes: set[str]) -> dict[str, LvLine]:
    found: dict[str, LvLine] = {}
    ordered = sorted(codes)
    for i in range(0, len(ordered), 500):
        chunk = ordered[i : i + 500]
        found.update({
            line.code: line
            for line in session.execute(select(LvLine).where(LvLine.code.in_(chunk))).scalars()
        })
    return found


# --- reading ----------------------------------------------------------------------------------


def get_by_code(session: Session, code: str) -> Transformer | None:
    """The transformer with ``code``, or None."""
    return session.execute(select(Transformer).where(Transformer.code == code)).scalar_one_or_none()


def get_by_code_or_raise(session: Session, code: str) -> Transformer:
    """The transformer with ``code``; 404 when unknown."""
    found = get_by_code(session, code)
    if found is None:
        raise NotFound(
            f"transformer {code} not found",
            code="network.transformer_not_found",
            params={"transformer_code": code},
        )
    return found


def near(session: Session, lon: float, lat: float, *, radius_m: float) -> list[Transformer]:
    """Transformers in the bounding box of a circle (a superset; the engine measures exactly)."""
    try:
        geo.check_lon_lat(lon, lat, "position")
    except geo.SchemeInputError as exc:
        raise ValidationFailed(
            str(exc),
            code="network.position_invalid",
            params={"reason": str(exc)},
        ) from exc
    dlat = radius_m * 1.01 / M_PER_DEG_LAT
    dlon = radius_m * 1.01 / (M_PER_DEG_LAT * max(math.cos(math.radians(lat)), 1e-6))
    return list(session.execute(
        select(Transformer)
        .where(Transformer.lat.between(lat - dlat, lat + dlat))
        .where(Transformer.lon.between(lon - dlon, lon + dlon))
        .order_by(Transformer.id)
    ).scalars())


def lines_of(session: Session, transformer_ids: Sequence[int]) -> list[LvLine]:
    """The LV lines fed by the given transformers."""
    if not transformer_ids:
        return []
    return list(session.execute(
        select(LvLine).where(LvLine.transformer_id.in_(list(transformer_ids))).order_by(LvLine.id)
    ).scalars())


def capacities(session: Session, transformers: Sequence[Transformer]) -> dict[int, Capacity]:
    """Each transformer's capacity position, from its measured load and its connections."""
    ids = [t.id for t in transformers]
    energised: dict[int, float] = {}
    committed: dict[int, float] = {}
    if ids:
        live = and_(Connection.transformer_id.in_(ids), Connection.released_at.is_(None))
        rows = session.execute(
            select(Connection.transformer_id, func.sum(Connection.load_kva))
            .join(Transformer, Transformer.id == Connection.transformer_id)
            .where(live, Connection.energised_at.is_not(None))
            # a load energised before the measurement is already in the measured load
            .where(Connection.energised_at > Transformer.load_measured_at)
            .group_by(Connection.transformer_id)
        ).all()
        energised = {tid: float(total or 0) for tid, total in rows}
        rows = session.execute(
            select(Connection.transformer_id, func.sum(Connection.load_kva))
            .where(live, Connection.energised_at.is_(None))
            .group_by(Connection.transformer_id)
        ).all()
        committed = {tid: float(total or 0) for tid, total in rows}
    return {
        t.id: Capacity(
            rated_kva=t.rated_kva, base_load_kva=t.base_load_kva,
            energised_kva=energised.get(t.id, 0.0), committed_kva=committed.get(t.id, 0.0),
        )
        for t in transformers
    }


def engine_network(
    session: Session, lon: float, lat: float, *, radius_m: float, exclude_order_id: int | None
) -> geo.Network:
    """The engine's view of the network near a position: load = all but the available kVA.

    ``exclude_order_id``'s own committed load is not counted, so an order re-designing its
    scheme does not compete with itself.
    """
    found = near(session, lon, lat, radius_m=radius_m)
    caps = capacities(session, found)
    own: dict[int, float] = {}
    if exclude_order_id is not None:
        mine = get_connection(session, exclude_order_id)
        if mine is not None and mine.energised_at is None and mine.released_at is None:
            own[mine.transformer_id] = mine.load_kva
    transformers = [
        geo.SupplyTransformer(
            id=t.code, rated_kva=t.rated_kva,
            load_kva=max(0.0, t.rated_kva - caps[t.id].available_kva - own.get(t.id, 0.0)),
            lon=t.lon, lat=t.lat,
        )
        for t in found
    ]
    by_id = {t.id: t.code for t in found}
    lines = [
        geo.LvLine(
            id=line.code, transformer_id=by_id[line.transformer_id],
            coords=tuple((float(c[0]), float(c[1])) for c in line.coords),
        )
        for line in lines_of(session, list(by_id))
    ]
    return geo.Network(transformers, lines, origin=(lon, lat))


# --- connections ------------------------------------------------------------------------------


def get_connection(session: Session, order_id: int) -> Connection | None:
    """The order's connection to a transformer, or None."""
    return session.execute(
        select(Connection).where(Connection.order_id == order_id)
    ).scalar_one_or_none()


def commit_connection(
    session: Session, *, order_id: int, transformer: Transformer, load_kva: float,
    actor: Principal | None,
) -> Connection:
    """Book an order's load on a transformer (replacing an earlier booking of the order)."""
    conn = get_connection(session, order_id)
    if conn is None:
        conn = Connection(order_id=order_id, transformer_id=transformer.id, load_kva=load_kva)
        session.add(conn)
    else:
        conn.transformer_id, conn.load_kva = transformer.id, load_kva
        conn.energised_at, conn.released_at = None, None
    conn.committed_at = clock.now()
    audit.record(session, actor=actor, action="network.connection.commit", entity=conn)
    return conn


def mark_energised(session: Session, order_id: int, *, actor: Principal | None) -> None:
    """The order's load is now on its transformer: its spare capacity falls."""
    conn = get_connection(session, order_id)
    if conn is not None and conn.energised_at is None and conn.released_at is None:
        conn.energised_at = clock.now()
        audit.record(session, actor=actor, action="network.connection.energise", entity=conn)


def release(session: Session, order_id: int, *, actor: Principal | None) -> None:
    """A cancelled order gives its booked capacity back."""
    conn = get_connection(session, order_id)
    if conn is not None and conn.released_at is None:
        conn.released_at = clock.now()
        audit.record(session, actor=actor, action="network.connection.release", entity=conn)


def transformer_summary(session: Session, transformer: Transformer) -> dict[str, Any]:
    """A transformer with its capacity figures, for the read endpoints."""
    cap = capacities(session, [transformer])[transformer.id]
    return {
        "code": transformer.code, "name": transformer.name, "lon": transformer.lon,
        "lat": transformer.lat, "rated_kva": transformer.rated_kva,
        "base_load_kva": transformer.base_load_kva,
        "load_measured_at": transformer.load_measured_at,
        "energised_kva": cap.energised_kva, "committed_kva": cap.committed_kva,
        "spare_kva": cap.spare_kva, "available_kva": cap.available_kva,
    }


def nearby_summaries(
    session: Session, lon: float, lat: float, *, radius_m: float
) -> list[dict[str, Any]]:
    """Transformers within ``radius_m`` with distances and capacity figures, nearest first."""
    found = {t.code: t for t in near(session, lon, lat, radius_m=radius_m)}
    if not found:
        return []
    network = geo.Network(
        [geo.SupplyTransformer(id=t.code, rated_kva=t.rated_kva, load_kva=0, lon=t.lon, lat=t.lat)
         for t in found.values()],
        origin=(lon, lat),
    )
    return [
        {**transformer_summary(session, found[t.id]), "distance_m": distance}
        for t, distance in network.within(lon, lat, radius_m)
    ]
