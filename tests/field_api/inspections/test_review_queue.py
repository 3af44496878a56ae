"""The review queue: defects first (insulators on request), paged with its total, and decisions
that name the version of the finding they were shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import Conflict
from field_api.inspections import importing, review
from field_api.inspections.models import Finding
from field_api.inspections.rules import FindingStatus
from tests.builders import auth, make_user
from tests.field_api.inspections.test_service import BATCH, write_batch
from vision import records as rec


@pytest.fixture(autouse=True)
def _inspections_dir(settings: Settings, tmp_path: Path) -> None:
    settings.vision.inspections_dir = tmp_path


def write_big_batch(root: Path, defects: int, insulators: int) -> Path:
    """The test batch plus many more boxes on its photo: ``defects`` and ``insulators``."""
    out = write_batch(root)
    records = list(rec.read_jsonl(out / "records.jsonl"))
    photo_id = next(r.photo_id for r in records if r.kind == "photo")
    for i in range(defects + insulators):
        defect = i < defects
        records.append(
            rec.DetectionRecord(
                id=f"det-extra-{i:03d}",
                batch_id=BATCH,
                photo_id=photo_id,
                class_id=1 if defect else 0,
                class_name="defect" if defect else "insulator",
                role="defect" if defect else "asset_marker",
                confidence=0.8,
                severity=1 + i % 3 if defect else 0,
                xyxy=(1 + i, 1, 20 + i, 20),
                attach="none",
            )
        )
    rec.write_jsonl(records, out / "records.jsonl")
    return out


def test_the_queue_holds_defects_by_default_and_pages_past_200(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    # 1 + 229 defects and 1 + 20 insulator boxes
    importing.import_batch(session, write_big_batch(tmp_path, 229, 20), settings=settings, actor=None)
    rows, total = review.list_findings(session, limit=500)
    assert total == 230 and len(rows) == 230  # no silent cap at 200
    assert all(r.severity >= 1 for r in rows)
    severities = [r.severity for r in rows]
    assert severities == sorted(severities, reverse=True)  # most serious first
    _, with_insulators = review.list_findings(session, include_insulators=True, limit=1)
    assert with_insulators == 251
    asked, count = review.list_findings(session, class_name="insulator")
    assert count == 21 and {r.class_name for r in asked} == {"insulator"}

    seen: list[str] = []
    offset = 0
    while True:  # paging walks every finding once
        page, total = review.list_findings(session, limit=64, offset=offset)
        seen += [r.id for r in page]
        offset += len(page)
        if offset >= total:
            break
    assert len(seen) == len(set(seen)) == 230


def test_a_decision_names_the_version_it_was_shown(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    user, _ = make_user(session, settings, role=Role.inspector)
    actor = Principal(user_id=user.id, name=user.name, role=Role.inspector)
    importing.import_batch(session, write_batch(tmp_path), settings=settings, actor=None)
    finding = session.get(Finding, "det-insulator")
    assert finding is not None and finding.version == 1
    review.review(
        session,
        "det-insulator",
        decision=FindingStatus.rejected,
        actor=actor,
        settings=settings,
        version=1,
    )
    assert finding.version == 2
    review.undo_review(session, "det-insulator", actor=actor, version=2)
    assert finding.version == 3 and finding.status == FindingStatus.proposed
    # a page still showing version 1 (or 2) cannot decide on it
    with pytest.raises(Conflict) as stale:
        review.review(
            session,
            "det-insulator",
            decision=FindingStatus.confirmed,
            actor=actor,
            settings=settings,
            version=2,
        )
    assert stale.value.code == "inspection.finding_stale"
    assert stale.value.params == {"finding_id": "det-insulator", "shown": 2, "version": 3}
    assert finding.status == FindingStatus.proposed


def test_http_queue_page_and_stale_decision(
    client: TestClient, session: Session, settings: Settings, tmp_path: Path
) -> None:
    _, inspector = make_user(session, settings, role=Role.inspector)
    importing.import_batch(session, write_big_batch(tmp_path, 4, 3), settings=settings, actor=None)
    session.commit()
    h = auth(inspector)
    page = client.get("/inspections/findings?limit=2", headers=h).json()
    assert page["total"] == 5 and len(page["items"]) == 2 and page["next_offset"] == 2
    last = client.get("/inspections/findings?limit=2&offset=4", headers=h).json()
    assert len(last["items"]) == 1 and last["next_offset"] is None
    everything = client.get("/inspections/findings?include_insulators=true", headers=h).json()
    assert everything["total"] == 9
    assert client.get("/inspections/findings?limit=0", headers=h).status_code == 422
    assert client.get("/inspections/findings?limit=501", headers=h).status_code == 422

    shown = page["items"][0]
    r = client.post(
        f"/inspections/findings/{shown['id']}/review",
        json={"decision": "rejected", "version": shown["version"]},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["finding"]["version"] == shown["version"] + 1
    # the same key pressed on a panel that still shows the old version is refused
    r = client.post(
        f"/inspections/findings/{shown['id']}/undo",
        json={"version": shown["version"]},
        headers={**h, "Accept-Language": "en"},
    )
    assert r.status_code == 409 and r.json()["code"] == "inspection.finding_stale"
    assert "reload" in r.json()["detail"]
    r = client.post(
        f"/inspections/findings/{shown['id']}/review",
        json={"decision": "confirmed", "version": 0},
        headers=h,
    )
    assert r.status_code == 422  # a version is a positive number
    # a decision naming another finding than the one it is sent for is refused
    other = page["items"][1]
    r = client.post(
        f"/inspections/findings/{other['id']}/review",
        json={"decision": "confirmed", "finding_id": shown["id"], "version": other["version"]},
        headers=h,
    )
    assert r.status_code == 409 and r.json()["code"] == "inspection.finding_mismatch"
    r = client.post(
        f"/inspections/findings/{other['id']}/review",
        json={"decision": "confirmed", "finding_id": other["id"], "version": other["version"]},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["finding"]["status"] == "confirmed"
