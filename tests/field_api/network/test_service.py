"""Network import and spare capacity on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit.models import AuditEvent
from field_api.common.clock import now as utcnow
from field_api.errors import ValidationFailed
from field_api.network import service
from field_api.network.models import LvLine, NetworkImport, Transformer
from field_api.network.schemas import ImportReportRead
from field_api.work_orders import service as orders
from field_api.work_orders.rules import Stage
from tests.builders import make_order

FIXTURES = Path(__file__).parents[2] / "fixtures" / "network"


def _import(session: Session, name: str, **kwargs: object) -> ImportReportRead:
    return service.import_file(
        session, (FIXTURES / name).read_bytes(), filename=name, actor=None, **kwargs  # type: ignore[arg-type]
    )


def _count(session: Session, model: type[object]) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_geojson_import_creates_then_updates(session: Session) -> None:
    first = _import(session, "network.geojson")
    assert (first.transformers_created, first.lines_created) == (2, 1)
    tx = service.get_by_code_or_raise(session, "TX-NANSHAN-02")
    assert tx.base_load_kva == pytest.approx(200)  # 180 kW at the assumed 0.9
    again = _import(session, "network.geojson")
    assert (again.transformers_created, again.transformers_updated, again.lines_updated) == (0, 2, 1)
    assert _count(session, Transformer) == 2 and _count(session, LvLine) == 1
    record = session.get(NetworkImport, again.import_id)
    assert record is not None and record.counts["transformers_updated"] == 2
    audited = session.execute(
        select(AuditEvent).where(AuditEvent.entity_type == "network_imports")
    ).scalars().all()
    assert len(audited) == 2


def test_csv_lines_may_refer_to_transformers_imported_before(session: Session) -> None:
    _import(session, "transformers.csv")
    report = _import(session, "lines.csv")
    assert report.lines_created == 1 and report.file_format == "csv"
    [line] = session.execute(select(LvLine)).scalars().all()
    assert line.coords[0] == [113.931278, 22.5333]


def test_bad_rows_import_nothing_and_are_listed(session: Session) -> None:
    with pytest.raises(ValidationFailed) as info:
        _import(session, "broken.csv")
    detail = info.value.detail
    assert "nothing was imported" in detail["message"]
    assert [r["row"] for r in detail["rows"]] == [3, 4, 5, 6, 7, 8]
    assert _count(session, Transformer) == 0  # the one good row was not written either


def test_a_line_to_an_unknown_transformer_is_a_row_error(session: Session) -> None:
    with pytest.raises(ValidationFailed) as info:
        _import(session, "lines.csv")
    [row] = info.value.detail["rows"]
    assert row["row"] == 2
    assert row["errors"] == [
        "transformer_code TX-NANSHAN-01 is neither in the file nor imported"
    ]


def test_dry_run_counts_without_writing(session: Session) -> None:
    report = _import(session, "network.geojson", dry_run=True)
    assert report.dry_run and report.transformers_created == 2 and report.import_id is None
    assert _count(session, Transformer) == 0


def test_spare_capacity_falls_as_connections_are_energised(session: Session) -> None:
    _import(session, "network.geojson")
    tx = service.get_by_code_or_raise(session, "TX-NANSHAN-01")
    order = make_order(session, stage=Stage.installed)
    service.commit_connection(session, order_id=order.id, transformer=tx, load_kva=40, actor=None)
    before = service.capacities(session, [tx])[tx.id]
    assert (before.spare_kva, before.committed_kva, before.available_kva) == (150, 40, 110)
    orders.transition(session, order, Stage.inspected, actor=None)
    orders.transition(session, order, Stage.energised, actor=None)
    after = service.capacities(session, [tx])[tx.id]
    assert (after.spare_kva, after.committed_kva, after.available_kva) == (110, 0, 110)


def test_a_new_load_measurement_already_contains_energised_connections(session: Session) -> None:
    _import(session, "network.geojson")
    tx = service.get_by_code_or_raise(session, "TX-NANSHAN-01")
    order = make_order(session, stage=Stage.installed)
    service.commit_connection(session, order_id=order.id, transformer=tx, load_kva=40, actor=None)
    service.mark_energised(session, order.id, actor=None)
    assert service.capacities(session, [tx])[tx.id].spare_kva == 110
    tx.load_measured_at = utcnow() + timedelta(seconds=1)  # a re-import measured after it
    session.flush()
    assert service.capacities(session, [tx])[tx.id].spare_kva == 150


def test_cancelling_an_order_gives_its_capacity_back(session: Session) -> None:
    _import(session, "network.geojson")
    tx = service.get_by_code_or_raise(session, "TX-NANSHAN-01")
    order = make_order(session, stage=Stage.scheme_answered)
    service.commit_connection(session, order_id=order.id, transformer=tx, load_kva=40, actor=None)
    orders.transition(session, order, Stage.cancelled, actor=None, reason="customer withdrew")
    assert service.capacities(session, [tx])[tx.id].committed_kva == 0


def test_nearby_transformers_are_sorted_by_distance(session: Session) -> None:
    _import(session, "network.geojson")
    rows = service.nearby_summaries(session, 113.9305, 22.5333, radius_m=500)
    assert [r["code"] for r in rows] == ["TX-NANSHAN-01", "TX-NANSHAN-02"]
    assert rows[0]["distance_m"] == pytest.approx(80, abs=1)
    assert rows[1]["distance_m"] == pytest.approx(199, abs=1)  # 0.0017966° of latitude
    assert service.nearby_summaries(session, 113.9305, 22.5333, radius_m=100)[0]["spare_kva"] == 150
