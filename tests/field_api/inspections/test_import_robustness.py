"""A records file that cannot be read is a clear 4xx error naming the line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from field_api.common.actors import Role
from field_api.config import Settings, get_settings
from field_api.inspections.models import InspectionBatch
from tests.builders import auth, make_user
from vision import records as rec


@pytest.fixture(autouse=True)
def _inspections_dir(settings: Settings, tmp_path: Path) -> None:
    settings.vision.inspections_dir = tmp_path


def write_gbk_batch(root: Path) -> Path:
    """A batch folder whose records file has one line saved as GBK (not UTF-8) on line 2."""
    out = root / "batch"
    out.mkdir()
    line = rec.LineRecord(id="l1", batch_id="B-GBK", line_id="L1", name="北线",
                          corridor_width_m=20.0, parts=[[(113.9, 22.5), (113.91, 22.5)]])
    good = rec.to_json_line(line.model_copy(update={"id": "l0", "line_id": "L0"}))
    bad = rec.to_json_line(line)
    (out / "records.jsonl").write_bytes(
        (good + "\n").encode("utf-8") + (bad + "\n").encode("gbk")
    )
    return out


def test_http_import_of_a_non_utf8_records_file_is_a_422_naming_the_line(
    client: TestClient, session: Session, settings: Settings, tmp_path: Path
) -> None:
    write_gbk_batch(tmp_path)
    _, inspector = make_user(session, settings, role=Role.inspector)
    session.commit()

    r = client.post("/inspections/batches/import", json={"directory": "batch"},
                    headers=auth(inspector, **{"Accept-Language": "en"}))

    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "inspection.records_invalid"
    assert "records.jsonl line 2: not UTF-8" in body["detail"]
    assert "Traceback" not in r.text
    assert session.scalar(select(func.count()).select_from(InspectionBatch)) == 0


def test_cli_import_of_a_non_utf8_records_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from field_api.cli import app as cli

    batch = write_gbk_batch(tmp_path)
    monkeypatch.setenv("FIELDOPS_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("FIELDOPS_MEDIA_DIR", str(tmp_path / "media"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["inspections", "import", str(batch)])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    error = json.loads(result.output.strip().splitlines()[-1])
    assert error["code"] == "inspection.records_invalid"
    assert "line 2" in error["detail"]
    assert "Traceback" not in result.output
