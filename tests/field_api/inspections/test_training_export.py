"""The retraining export: YOLO + COCO + VOC with a manifest, every box of an image, hard
negatives, clipping, classes checked against the model card; and a set that trains and evaluates.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path

import pytest
import yaml
from PIL import Image
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import ValidationFailed
from field_api.inspections import export, export_labels, export_writer, importing, review
from field_api.inspections.models import InspectionBatch
from field_api.inspections.rules import FindingStatus
from tests.builders import make_user
from vision import records as rec
from vision.train.voc import read_voc

BATCH = "batch-retrain-01"
CPLID = Path(__file__).resolve().parents[2] / "fixtures" / "vision" / "cplid"
# Ground truth of the three CPLID fixture photos (their VOC files): insulator, then defect.
GT = {
    name: [(o.name, o.xyxy) for o in read_voc(CPLID / "annotations" / f"{name}.xml").objects]
    for name in ("defect_001", "defect_012", "defect_020")
}


def _jpeg(color: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def _box(name: str, cls: str) -> tuple[float, float, float, float]:
    return next(box for c, box in GT[name] if c == cls)


def write_cplid_batch(root: Path) -> None:
    """A `fieldops vision run` output over the three CPLID photos plus two plain ones.

    Detections (ids ``<photo>-<what>``):
    - defect_001: insulator proposed 0.9, defect (to confirm), bird_nest (to confirm: unknown to
      the card), a defect false alarm (to reject);
    - defect_012: insulator proposed 0.9 reaching past the right edge (clipped), insulator
      proposed 0.2 (below the card's threshold), defect proposed off by 30 px (to correct),
      a defect wholly outside the image (to confirm: refused);
    - defect_020: insulator proposed 0.9, defect (to confirm);
    - plain_a: one defect false alarm (to reject): a hard-negative image without boxes;
    - plain_b: a confirmed insulator and a defect still awaiting review: held back.
    """
    out = root / "batch"
    out.mkdir(parents=True)
    photos: dict[str, bytes] = {
        name: (CPLID / "images" / f"{name}.jpg").read_bytes() for name in GT
    }
    photos["plain_a"] = _jpeg((90, 120, 160))
    photos["plain_b"] = _jpeg((30, 160, 60))
    ids = {name: hashlib.sha256(data).hexdigest() for name, data in photos.items()}
    items: list[object] = []
    for name, data in photos.items():
        (out / f"{name}.jpg").write_bytes(data)
        w, h = Image.open(io.BytesIO(data)).size
        items.append(
            rec.PhotoRecord(
                id=rec.stable_id("photo", ids[name]), batch_id=BATCH, photo_id=ids[name],
                path=f"{name}.jpg", width_px=w, height_px=h,
            )
        )

    def det(name: str, what: str, cls: str, conf: float, box: tuple[float, ...]) -> None:
        role = "defect" if cls in ("defect", "bird_nest") else "asset_marker"
        items.append(
            rec.DetectionRecord(
                id=f"{name}-{what}", batch_id=BATCH, photo_id=ids[name],
                class_id={"insulator": 0, "defect": 1}.get(cls, 7), class_name=cls, role=role,
                confidence=conf, severity=3 if role == "defect" else 0,
                xyxy=(box[0], box[1], box[2], box[3]), attach="none",
            )
        )

    det("defect_001", "insulator", "insulator", 0.9, _box("defect_001", "insulator"))
    det("defect_001", "defect", "defect", 0.95, _box("defect_001", "defect"))
    det("defect_001", "nest", "bird_nest", 0.8, (100, 100, 180, 160))
    det("defect_001", "false", "defect", 0.7, (20, 20, 60, 60))
    x1, y1, _, y2 = _box("defect_012", "insulator")
    det("defect_012", "insulator", "insulator", 0.9, (x1, y1, 1300, y2))
    det("defect_012", "faint", "insulator", 0.2, (10, 10, 90, 50))
    dx1, dy1, dx2, dy2 = _box("defect_012", "defect")
    det("defect_012", "defect", "defect", 0.8, (dx1 + 30, dy1, dx2 + 30, dy2))
    det("defect_012", "outside", "defect", 0.75, (1200, 900, 1260, 950))
    det("defect_020", "insulator", "insulator", 0.9, _box("defect_020", "insulator"))
    det("defect_020", "defect", "defect", 0.9, _box("defect_020", "defect"))
    det("plain_a", "false", "defect", 0.7, (40, 40, 90, 90))
    det("plain_b", "insulator", "insulator", 0.6, (20, 20, 200, 120))
    det("plain_b", "defect", "defect", 0.7, (40, 40, 90, 90))
    rec.write_jsonl(items, out / "records.jsonl")  # type: ignore[arg-type]
    (out / "batch.json").write_text(
        json.dumps({"batch_id": BATCH, "model": "cplid-cascade@4",
                    "finished_at": "2026-11-30T08:00:00+00:00"}),
        encoding="utf-8",
    )


def reviewed_export(
    session: Session, settings: Settings, tmp_path: Path
) -> export_writer.ExportSummary:
    """Import the batch, review as an inspector, export into tmp_path/export."""
    settings.vision.inspections_dir = tmp_path
    inspector, _ = make_user(session, settings, role=Role.inspector)
    write_cplid_batch(tmp_path)
    importing.import_batch(session, tmp_path / "batch", settings=settings, actor=None)
    actor = Principal(user_id=inspector.id, name=inspector.name, role=Role.inspector)
    for fid in ("defect_001-defect", "defect_001-nest", "defect_012-outside",
                "defect_020-defect", "plain_b-insulator"):
        review.review(session, fid, decision=FindingStatus.confirmed, actor=actor,
                       settings=settings)
    for fid in ("defect_001-false", "plain_a-false"):
        review.review(session, fid, decision=FindingStatus.rejected, actor=actor,
                       settings=settings)
    review.review(session, "defect_012-defect", decision=FindingStatus.corrected, actor=actor,
                   settings=settings, xyxy=_box("defect_012", "defect"))
    session.flush()
    return export.export_training_set(session, tmp_path / "export", settings=settings)


def _labels(out: Path, photo_id: str) -> tuple[str, list[list[float]]]:
    """(split, YOLO rows) of the exported photo."""
    for split in ("train", "val"):
        for label in (out / split / "labels").glob(f"*_{photo_id[:8]}.txt"):
            rows = [[float(v) for v in line.split()] for line in label.read_text().splitlines()]
            return split, rows
    raise AssertionError(f"photo {photo_id} not exported")


@pytest.mark.both_stores
def test_every_exported_image_carries_all_its_boxes_in_yolo_coco_and_voc(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    summary = reviewed_export(session, settings, tmp_path)
    out = tmp_path / "export"
    ids = {p: hashlib.sha256((tmp_path / "batch" / f"{p}.jpg").read_bytes()).hexdigest()
           for p in ("defect_001", "defect_012", "defect_020", "plain_a", "plain_b")}

    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "insulator", 1: "defect"}  # the card's classes, in id order
    assert (out / data["train"]).is_dir() and (out / data["val"]).is_dir()

    # defect_001: the proposed insulator (above the card's threshold) and the confirmed defect
    _, rows = _labels(out, ids["defect_001"])
    assert sorted(int(r[0]) for r in rows) == [0, 1]
    (ix1, iy1, ix2, iy2) = _box("defect_001", "insulator")
    ins = next(r for r in rows if r[0] == 0)
    assert ins[1:] == pytest.approx(
        [(ix1 + ix2) / 2 / 1152, (iy1 + iy2) / 2 / 864, (ix2 - ix1) / 1152, (iy2 - iy1) / 864],
        abs=1e-5,
    )
    # defect_012: clipped insulator (x2 1300 → 1152), corrected defect at its corrected place,
    # nothing of the faint insulator nor of the box wholly outside
    _, rows = _labels(out, ids["defect_012"])
    assert sorted(int(r[0]) for r in rows) == [0, 1]
    ins = next(r for r in rows if r[0] == 0)
    assert ins[1] + ins[3] / 2 == pytest.approx(1.0, abs=1e-5)  # right edge on the image edge
    dx1, _, dx2, _ = _box("defect_012", "defect")
    assert next(r for r in rows if r[0] == 1)[1] == pytest.approx((dx1 + dx2) / 2 / 1152, abs=1e-5)
    # plain_a: a rejected false alarm only → exported as a hard negative, no box
    assert _labels(out, ids["plain_a"])[1] == []
    # plain_b: a defect still awaits review → held back
    assert not list(out.glob(f"*/images/*_{ids['plain_b'][:8]}.jpg"))
    assert summary.held_back == [{"photo_id": ids["plain_b"], "reason": "defect_awaiting_review"}]

    assert summary.boxes == {"insulator": 3, "defect": 3}
    assert summary.images["train"] + summary.images["val"] == 4
    assert summary.images["train"] >= 1 and summary.images["val"] >= 1
    assert summary.hard_negatives == 2 and summary.clipped == 1
    assert sorted((r["finding_id"], r["reason"]) for r in summary.refused) == [
        ("defect_001-nest", "unknown_class"),
        ("defect_012-outside", "outside_image"),
    ]
    assert json.loads((out / "summary.json").read_text())["refused"] == summary.refused

    # VOC beside the YOLO labels (what `fieldops vision train|evaluate` read), same boxes
    for split in ("train", "val"):
        for label in (out / split / "labels").glob("*.txt"):
            voc = read_voc(out / split / "annotations" / f"{label.stem}.xml")
            assert len(voc.objects) == len(label.read_text().splitlines())
            assert (out / split / "images" / voc.filename).is_file()
    # COCO: the same images and boxes, categories from the card
    coco = {s: json.loads((out / "coco" / f"instances_{s}.json").read_text())
            for s in ("train", "val")}
    assert [c["name"] for c in coco["train"]["categories"]] == ["insulator", "defect"]
    assert sum(len(c["images"]) for c in coco.values()) == 4
    assert sum(len(c["annotations"]) for c in coco.values()) == 6
    for c in coco.values():
        for image in c["images"]:
            assert (out / image["file_name"]).is_file()


def test_manifest_names_batch_model_decision_and_reviewer_of_each_box(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    reviewed_export(session, settings, tmp_path)
    raw = (tmp_path / "export" / "manifest.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets read it as UTF-8
    rows = {r["finding_id"]: r for r in csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))}
    assert set(rows) == {
        "defect_001-insulator", "defect_001-defect", "defect_001-nest", "defect_001-false",
        "defect_012-insulator", "defect_012-faint", "defect_012-defect", "defect_012-outside",
        "defect_020-insulator", "defect_020-defect", "plain_a-false", "plain_b-insulator",
        "plain_b-defect",
    }
    confirmed = rows["defect_001-defect"]
    assert confirmed["source_batch"] == BATCH and confirmed["photo_path"] == "defect_001.jpg"
    assert (confirmed["proposed_by_model"], confirmed["model_version"]) == ("cplid-cascade", "4")
    assert (confirmed["use"], confirmed["decision"]) == ("box", "confirmed")
    assert confirmed["reviewer"] and confirmed["export_file"].endswith(".jpg")
    assert confirmed["export_file"].startswith(confirmed["split"] + "/images/")
    proposed = rows["defect_001-insulator"]
    assert (proposed["use"], proposed["reason"], proposed["reviewer"]) == (
        "box", "proposed_above_threshold", "")
    assert (rows["defect_001-false"]["use"], rows["defect_001-false"]["decision"]) == (
        "hard_negative", "rejected")
    assert rows["plain_a-false"]["export_file"]  # the hard-negative image is exported
    assert rows["defect_012-faint"]["use"] == "not_used"
    assert rows["defect_012-insulator"]["clipped"] == "yes"
    assert rows["defect_012-insulator"]["x2"] == "1152.0"
    assert (rows["defect_012-defect"]["use"], rows["defect_012-defect"]["decision"]) == (
        "box", "corrected")
    assert rows["plain_b-defect"]["use"] == "held_back" and not rows["plain_b-defect"]["split"]
    batch = session.get(InspectionBatch, BATCH)
    assert batch is not None and batch.model == "cplid-cascade@4"  # kept from batch.json


def test_export_refuses_a_folder_in_use_and_an_unknown_card(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.txt").write_text("x")
    with pytest.raises(ValidationFailed) as info:
        export.export_training_set(session, tmp_path / "used", settings=settings)
    assert info.value.code == "inspection.export_target_not_empty"
    assert (tmp_path / "used" / "old.txt").read_text() == "x"
    with pytest.raises(ValidationFailed) as info:
        export.export_training_set(session, tmp_path / "new", settings=settings, model="nope")
    assert info.value.code == "inspection.export_card_missing"
    assert not (tmp_path / "new").exists()


def test_clip_and_box_use_rules() -> None:
    card = export_labels.CardClasses(
        name="c", version=1, names=("insulator", "defect"),
        roles={"insulator": "asset_marker", "defect": "defect"},
        thresholds={"insulator": 0.5, "defect": 0.6},
    )
    assert export_labels.clip_box((-5, -5, 10, 10), 100, 80) == ((0.0, 0.0, 10.0, 10.0), True)
    assert export_labels.clip_box((5, 5, 10, 10), 100, 80) == ((5.0, 5.0, 10.0, 10.0), False)
    assert export_labels.clip_box((100, 10, 120, 20), 100, 80) == (None, True)  # wholly outside
    use = export_labels.box_use
    assert use(status=FindingStatus.proposed, class_name="insulator", confidence=0.5,
               card=card) == ("box", "proposed_above_threshold")
    assert use(status=FindingStatus.proposed, class_name="insulator", confidence=0.49,
               card=card)[0] == "not_used"
    assert use(status=FindingStatus.proposed, class_name="defect", confidence=0.99,
               card=card) == ("held_back", "defect_awaiting_review")
    assert use(status=FindingStatus.confirmed, class_name="bird_nest", confidence=0.9,
               card=card) == ("refused", "unknown_class")
    assert use(status=FindingStatus.rejected, class_name="insulator", confidence=0.9,
               card=card)[0] == "hard_negative"


# Ultralytics' Ray Tune callback asks Ray for a trial outside any Tune session (Ray warns).
@pytest.mark.filterwarnings("ignore:`get_trial_id` is meant:UserWarning")
def test_the_export_trains_one_epoch_and_evaluates_with_insulator_precision(
    session: Session, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One Ultralytics epoch from yolo11n.yaml on the export's data.yaml, then
    `fieldops vision evaluate` of the bundled model on the export's val split.

    A one-epoch model from scratch detects nothing yet, so the precision is measured with the
    bundled cplid-cascade: it shows that the export's insulator boxes are real ground truth
    (the Pascal VOC export without them scored insulator precision 0).
    """
    pytest.importorskip("ultralytics")
    from vision.offline import prepare_offline
    from vision.train.training import model_yaml

    reviewed_export(session, settings, tmp_path)
    out = tmp_path / "export"
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo-config"))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    prepare_offline(tmp_path / "yolo-config")
    from ultralytics import YOLO  # type: ignore[attr-defined,unused-ignore]

    from vision.offline import restore_pillow_open

    restore_pillow_open()
    cfg = model_yaml(tmp_path / "cfg", nc=2)
    YOLO(str(cfg)).train(
        data=str(out / "data.yaml"), epochs=1, imgsz=64, batch=4, workers=0, device="cpu",
        project=str(tmp_path / "runs"), name="retrain", exist_ok=True, pretrained=False,
        amp=False, plots=False, verbose=False, seed=0, deterministic=True, val=True,
    )
    run = tmp_path / "runs" / "retrain"
    assert (run / "weights" / "last.pt").is_file()
    results = list(csv.DictReader(io.StringIO((run / "results.csv").read_text())))
    assert len(results) == 1  # one epoch, on our labels
    losses = [float(v) for k, v in results[0].items() if "loss" in k and v.strip()]
    assert losses and all(math.isfinite(v) for v in losses)

    from fieldops.cli import app

    figures = tmp_path / "eval.json"
    result = CliRunner().invoke(
        app, ["vision", "evaluate", "--data", str(out / "val"), "--json", str(figures),
              "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    insulator = json.loads(figures.read_text())["classes"]["insulator"]
    assert insulator["tp"] > 0 and insulator["precision"] > 0


def test_cli_exports_the_reviewed_set_and_refuses_a_used_folder(
    committed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from field_api.cli import app as cli
    from field_api.config import get_settings
    from field_api.db import make_engine, make_session_factory

    monkeypatch.setenv("FIELDOPS_DATABASE_URL", committed_url)
    monkeypatch.setenv("FIELDOPS_TOKEN_PEPPER", "cli-test-pepper-0123456789")
    monkeypatch.setenv("FIELDOPS_MEDIA_DIR", str(tmp_path / "media"))
    get_settings.cache_clear()
    try:
        write_cplid_batch(tmp_path)
        result = CliRunner().invoke(cli, ["inspections", "import", str(tmp_path / "batch")])
        assert result.exit_code == 0, result.output
        engine = make_engine(committed_url)
        with make_session_factory(engine)() as session:
            inspector, _ = make_user(session, get_settings(), role=Role.inspector)
            actor = Principal(user_id=inspector.id, name=inspector.name, role=Role.inspector)
            review.review(session, "defect_020-defect", decision=FindingStatus.confirmed,
                           actor=actor, settings=get_settings())
            session.commit()
        engine.dispose()

        out = tmp_path / "set"
        result = CliRunner().invoke(cli, ["inspections", "export-training-set", str(out)])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert summary["model"] == "cplid-cascade@4"
        assert summary["boxes"] == {"insulator": 1, "defect": 1}  # defect_020 only
        assert (out / "data.yaml").is_file() and (out / "manifest.csv").is_file()

        again = CliRunner().invoke(cli, ["inspections", "export-training-set", str(out)])
        assert again.exit_code == 2
        assert json.loads(again.output.strip().splitlines()[-1])["code"] == (
            "inspection.export_target_not_empty"
        )
    finally:
        get_settings.cache_clear()


def test_image_size_is_the_one_a_person_sees(tmp_path: Path) -> None:
    """A photo stored landscape with EXIF orientation 6 is portrait for the detector and for
    Ultralytics (both apply the tag), so its boxes are clipped and normalised portrait."""
    image = Image.new("RGB", (320, 240), (10, 20, 30))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "rotated.jpg", "JPEG", exif=exif)
    Image.new("RGB", (320, 240)).save(tmp_path / "plain.png", "PNG")
    assert export._image_facts(tmp_path / "rotated.jpg") == (240, 320, ".jpg")
    assert export._image_facts(tmp_path / "plain.png") == (320, 240, ".png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert export._image_facts(tmp_path / "broken.jpg") is None
