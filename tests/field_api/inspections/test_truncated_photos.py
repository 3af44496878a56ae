"""A drone JPEG cut short end to end: the batch decodes and searches it, flags it `truncated`,
the service imports it flagged (never refused) and its findings carry the model and version.

The real bundled cascade runs once per module on two CPLID fixture photos (a few seconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from tests.builders import auth, make_user
from vision.detect.images import decode_image_ex
from vision.detect.inference import Detector
from vision.detect.pipeline import BatchOptions, run_batch
from vision.records import DetectionRecord, PhotoRecord, read_jsonl
from vision.train.model_card import DEFAULT_MODELS_DIR, load_card

ROOT = Path(__file__).resolve().parents[3]
CPLID = ROOT / "tests" / "fixtures" / "vision" / "cplid" / "images"
LEDGER = ROOT / "tests" / "fixtures" / "drone" / "ledger.geojson"
CUT_BYTES = 8
HEADER_BYTES = 600


@pytest.fixture(scope="module")
def batch_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A finished batch: one photo a few bytes short, one cut inside its headers."""
    root = tmp_path_factory.mktemp("truncated")
    photos = root / "photos"
    photos.mkdir()
    whole = (CPLID / "defect_001.jpg").read_bytes()
    (photos / "sd_card_short.jpg").write_bytes(whole[:-CUT_BYTES])
    (photos / "header_only.jpg").write_bytes(whole[:HEADER_BYTES])
    card = load_card(DEFAULT_MODELS_DIR / "cplid-cascade", verify=False)
    detector = Detector(card, threads=1)
    run_batch(photos, [LEDGER], root / "batch", detector, card.classes,
              options=BatchOptions(progress=False, model_name=f"{card.name}@{card.version}"))
    yield root


def _records(batch_root: Path) -> tuple[dict[str, PhotoRecord], list[DetectionRecord]]:
    records = list(read_jsonl(batch_root / "batch" / "records.jsonl"))
    photos = {Path(r.path).name: r for r in records if isinstance(r, PhotoRecord)}
    return photos, [r for r in records if isinstance(r, DetectionRecord)]


def test_decoding_a_jpeg_cut_short_gives_the_whole_photo_flagged(tmp_path: Path) -> None:
    whole = (CPLID / "defect_001.jpg").read_bytes()
    (tmp_path / "short.jpg").write_bytes(whole[:-CUT_BYTES])
    (tmp_path / "half.jpg").write_bytes(whole[: len(whole) // 2])
    reference, flagged = decode_image_ex(CPLID / "defect_001.jpg")
    assert not flagged
    short, flagged = decode_image_ex(tmp_path / "short.jpg")
    assert flagged and short.shape == reference.shape
    half, flagged = decode_image_ex(tmp_path / "half.jpg")
    assert flagged and half.shape == reference.shape
    # the top half of a file cut in half is the photo's own top half
    top = half.shape[0] // 4
    assert abs(half[:top].astype(int) - reference[:top].astype(int)).mean() < 1.0


def test_batch_detects_on_a_truncated_photo_and_flags_it(batch_root: Path) -> None:
    photos, detections = _records(batch_root)
    short = photos["sd_card_short.jpg"]
    assert short.truncated
    assert any("truncated JPEG" in p for p in short.problems)
    found = [d for d in detections if d.photo_id == short.photo_id]
    assert {d.class_name for d in found} == {"insulator", "defect"}  # still detected
    assert {(d.model, d.model_version) for d in found} == {("cplid-cascade", "4")}


def test_a_photo_cut_inside_its_headers_is_an_error_record_with_the_reason(
    batch_root: Path,
) -> None:
    photos, detections = _records(batch_root)
    broken = photos["header_only.jpg"]
    assert not broken.truncated and broken.detections == 0
    assert any(
        p.startswith("unreadable image:") and f"cut short after {HEADER_BYTES} bytes" in p
        for p in broken.problems
    ), broken.problems
    assert not [d for d in detections if d.photo_id == broken.photo_id]


def test_service_imports_the_truncated_photo_flagged_with_model_per_finding(
    batch_root: Path, client: TestClient, session: Session, settings: Settings
) -> None:
    _, inspector = make_user(session, settings, role=Role.inspector)
    settings.vision.inspections_dir = batch_root
    session.commit()
    r = client.post(
        "/inspections/batches/import", json={"directory": "batch"}, headers=auth(inspector)
    )
    assert r.status_code == 200, r.text  # flagged, never refused
    photos, _ = _records(batch_root)
    short = client.get(
        f"/inspections/photos/{photos['sd_card_short.jpg'].photo_id}", headers=auth(inspector)
    ).json()
    assert short["truncated"] is True
    broken = client.get(
        f"/inspections/photos/{photos['header_only.jpg'].photo_id}", headers=auth(inspector)
    ).json()
    assert broken["truncated"] is False
    findings = client.get(
        "/inspections/findings?include_insulators=true", headers=auth(inspector)
    ).json()["items"]
    assert {f["photo_id"] for f in findings} == {short["id"]}
    assert {(f["model"], f["model_version"]) for f in findings} == {("cplid-cascade", "4")}
    # the truncated photo still got its listing thumbnail
    assert short["thumbnail_sha256"] is not None
