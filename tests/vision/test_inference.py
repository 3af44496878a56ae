"""Inference end to end with random-weight yolo11n networks built at test time, and the bundled model.

The random networks are built from Ultralytics' own ``yolo11n.yaml`` (nothing downloaded) and
exported to ONNX and OpenVINO in a temporary folder; no weights are committed for tests.
"""

from __future__ import annotations

import gc
import json
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from vision.cli.detect import app, detect_to_folder
from vision.detect.detections import Detections, box_iou
from vision.detect.inference import (
    REQUEST_BATCH,
    STREAM_LOOKAHEAD,
    Detector,
    Done,
    Letterbox,
    StageRunner,
    backend_available,
    decode_predictions,
    drop_cut_boxes,
    export_runtimes,
    letterbox,
    load_runner,
    save_untrained_weights,
    to_blob,
)
from vision.detect.tiling import tiles_along
from vision.errors import InferenceError, ModelIntegrityError
from vision.train.evaluate import evaluate_folder
from vision.train.model_card import DEFAULT_MODELS_DIR, Backend, ModelCard, hash_weights, load_card
from vision.train.voc import read_voc

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vision" / "cplid"
FIXTURE_IMAGES = sorted((FIXTURES / "images").glob("*.jpg"))
BACKENDS: list[Backend] = [b for b in ("torch", "onnx", "openvino") if backend_available(b)]
IMGSZ = 320


def _write_card(folder: Path, *, thresholds: dict[str, float]) -> Path:
    """A cascade card whose two stages share one random one-class network."""
    files = ["net.pt", "net.onnx", "net_openvino_model"]
    stage: dict[str, Any] = {"weights": "net.pt", "onnx": "net.onnx",
                             "openvino": "net_openvino_model", "imgsz": IMGSZ, "iou": 0.5}
    card = {
        "name": "random-cascade",
        "version": 1,
        "kind": "cascade",
        "classes": [
            {"id": 0, "name": "insulator", "role": "asset_marker", "severity": 0},
            {"id": 1, "name": "defect", "role": "defect", "severity": 3},
        ],
        "stages": {
            "insulator": {**stage, "conf": thresholds["insulator"], "classes": ["insulator"]},
            "defect": {**stage, "conf": thresholds["defect"], "classes": ["defect"],
                       "tile_px": 320, "tile_overlap": 0.25},
        },
        "conf_threshold": thresholds,
        "sha256": hash_weights(folder, files),
        "training": {"data": "none (random weights)", "selection": "none", "seed": 0,
                     "command": "save_untrained_weights"},
    }
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return folder


def _with_thresholds(folder: Path, conf: float) -> ModelCard:
    """The card of ``folder`` with every stage's and class's threshold set to ``conf``."""
    card = load_card(folder)
    stages = {k: v.model_copy(update={"conf": conf}) for k, v in card.stages.items()}
    strict = card.model_copy(update={"stages": stages,
                                     "conf_threshold": dict.fromkeys(card.conf_threshold, conf)})
    strict._directory = folder
    return strict


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("random-cascade")
    weights = save_untrained_weights(folder / "net.pt", ["object"])
    export_runtimes(weights, imgsz=IMGSZ)
    # A random network scores every anchor near 0.006. Pick thresholds from its own scores on
    # the fixture photos so that the best insulator(s) of each photo pass the gate (the cascade
    # then really tiles and runs its defect stage) and only the best few boxes per tile stay.
    _write_card(folder, thresholds={"insulator": 0.0, "defect": 0.0})
    stage = Detector(folder, backend=BACKENDS[-1]).stages["insulator"]
    images = [cv2.imread(str(p)) for p in FIXTURE_IMAGES]
    found = stage.detect(images, conf=0.0)
    ins_thr = min(float(d.confidence.max()) for d in found)
    tiles = [img[:320, :320] for img in images]
    def_thr = min(float(np.sort(d.confidence)[-3]) for d in stage.detect(tiles, conf=0.0))
    return _write_card(folder, thresholds={"insulator": ins_thr, "defect": def_thr})


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    image = cv2.imread(str(FIXTURE_IMAGES[0]))
    assert image is not None
    # a 640x480 cut around the defect keeps the random cascade to a handful of tiles
    return np.ascontiguousarray(image[300:780, 400:1040])


def test_letterbox_pads_and_maps_boxes_back() -> None:
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    canvas, box = letterbox(image, 320)
    assert canvas.shape == (320, 320, 3) and canvas.dtype == np.uint8
    assert box == Letterbox(gain=1.6, pad_x=0.0, pad_y=80.0)
    assert (canvas[:80] == 114).all() and (canvas[240:] == 114).all()  # grey padding
    assert (canvas[80:240] == 0).all()  # the (black) photo in the middle
    back = box.to_image(np.array([[0, 80, 320, 240]], dtype=np.float32))
    assert back.tolist() == [[0.0, 0.0, 200.0, 100.0]]


def test_letterbox_writes_the_resized_photo_into_a_batch_slot(photo: np.ndarray) -> None:
    # a 640x480 photo into a 320 canvas: resized to 320x240 straight into the slot's rows
    batch = np.zeros((2, 320, 320, 3), dtype=np.uint8)
    canvas, box = letterbox(photo, 320, out=batch[1])
    assert np.shares_memory(canvas, batch)
    expected = cv2.resize(photo, (320, 240), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(batch[1, 40:280], expected)
    assert (batch[1, :40] == 114).all() and (batch[1, 280:] == 114).all()
    assert box == Letterbox(gain=0.5, pad_x=0.0, pad_y=40.0)
    assert not batch[0].any()  # the other slot untouched


def test_to_blob_gives_the_networks_float_rgb_input() -> None:
    canvases = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    canvases[1, :, :, 0] = 255  # blue in BGR
    blob = to_blob(canvases)
    assert blob.shape == (2, 3, 4, 4) and blob.dtype == np.float32
    assert (blob[0] == 0).all()
    assert (blob[1, 2] == 1.0).all() and (blob[1, :2] == 0).all()  # blue is RGB's third
    assert to_blob(canvases[:0]).shape == (0, 3, 4, 4)


def test_letterbox_refuses_non_bgr_input() -> None:
    with pytest.raises(InferenceError, match="BGR"):
        letterbox(np.zeros((10, 10), dtype=np.uint8), 320)


def test_decode_converts_centres_thresholds_and_suppresses() -> None:
    # anchors: two overlapping class-1 boxes, one class-0 box, one below the threshold
    raw = np.array([
        [50, 52, 200, 300],   # cx
        [50, 50, 200, 300],   # cy
        [20, 20, 10, 10],     # w
        [10, 10, 10, 10],     # h
        [0.0, 0.0, 0.8, 0.0],  # class 0 score
        [0.9, 0.7, 0.1, 0.1],  # class 1 score
    ], dtype=np.float32)
    xyxy, scores, cls = decode_predictions(raw, conf=0.25, iou=0.5)
    assert xyxy.tolist() == [[40, 45, 60, 55], [195, 195, 205, 205]]
    assert scores.tolist() == pytest.approx([0.9, 0.8])
    assert cls.tolist() == [1, 0]


def test_a_network_with_other_classes_than_its_card_is_refused() -> None:
    card = load_card(DEFAULT_MODELS_DIR / "cplid-cascade")

    class ThreeClasses:
        backend: Backend = "openvino"

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            return self.start(batch).result()

        def start(self, batch: np.ndarray) -> Done[np.ndarray]:
            # no score over any threshold: the check must not wait for a box to decode
            return Done(np.zeros((len(batch), 4 + 3, 1344), dtype=np.float32))

    stage = StageRunner("defect", card.stages["defect"], ThreeClasses(), np.array([1]),
                        np.array([0, 3], dtype=np.int16))
    with pytest.raises(InferenceError, match="outputs 3 classes, the card names 1"):
        stage.detect([np.zeros((256, 256, 3), dtype=np.uint8)], conf=0.5)


def test_cut_fragments_covered_by_a_whole_box_are_dropped() -> None:
    dets = Detections(xyxy=[[100, 100, 160, 150], [100, 100, 130, 150], [400, 400, 420, 420]],
                      confidence=[0.6, 0.9, 0.5], class_id=[1, 1, 1], severity=[3, 3, 3])
    kept = drop_cut_boxes(dets, np.array([False, True, True]))
    # the fragment inside the whole box goes; a fragment with no whole counterpart stays
    assert kept.xyxy.tolist() == [[100, 100, 160, 150], [400, 400, 420, 420]]


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs two runtime backends")
def test_backends_compute_the_same_network(random_model: Path, photo: np.ndarray) -> None:
    card = load_card(random_model)
    blob, _ = letterbox(photo, IMGSZ)
    outputs = {
        b: load_runner(card.stage_path("insulator", b), b, imgsz=IMGSZ)(blob[None])
        for b in BACKENDS
    }
    reference = outputs[BACKENDS[0]]
    assert reference.shape == (1, 5, 2100)  # 4 box rows + 1 class, 320² input → 2100 anchors
    for b, out in outputs.items():
        np.testing.assert_allclose(out, reference, atol=2e-3, err_msg=b)


@pytest.mark.skipif(not backend_available("openvino"), reason="needs openvino")
def test_openvino_gives_each_image_its_own_output_however_requests_group_them(
    photo: np.ndarray
) -> None:
    # the bundled trained network: a random one answers about the same for every image
    card = load_card(DEFAULT_MODELS_DIR / "cplid-cascade")
    size = card.stages["defect"].imgsz
    runner = load_runner(card.stage_path("defect", "openvino"), "openvino", imgsz=size, threads=2)
    # ten different tiles on two streams: two requests of four, then two of one; three tiles:
    # too few to give each stream a group of four, so three of one
    blobs = np.stack([letterbox(photo[:, 50 * i:50 * i + 320], size)[0] for i in range(10)])
    alone = np.concatenate([runner(blobs[i:i + 1]) for i in range(10)])
    for n in (10, 3):
        together = runner(blobs[:n])
        assert together.shape == alone[:n].shape
        np.testing.assert_allclose(together, alone[:n], atol=1e-3)
    assert not np.allclose(alone[0], alone[1], atol=1e-3)  # the tiles really differ
    # started side by side and read back in the other order, each start gets its own outputs
    first, second = runner.start(blobs[:6]), runner.start(blobs[6:])
    np.testing.assert_allclose(second.result(), alone[6:], atol=1e-3)
    np.testing.assert_allclose(first.result(), alone[:6], atol=1e-3)


def test_the_overlapped_cascade_gives_each_photo_the_boxes_it_gets_alone() -> None:
    # nine photos in one call: first-stage chunks of four run ahead of the tile cutting and
    # tiles of neighbouring photos share requests; one photo per call shares nothing
    detector = Detector(DEFAULT_MODELS_DIR / "cplid-cascade")
    images = [cv2.imread(str(FIXTURE_IMAGES[i % len(FIXTURE_IMAGES)])) for i in range(9)]
    images = [np.ascontiguousarray(img[:, 40 * i:]) for i, img in enumerate(images)]
    together = detector(images)
    assert len(together) == 9
    for i, img in enumerate(images):
        [alone] = detector([img])
        assert len(alone) == len(together[i]) > 0, f"photo {i}"
        order_a, order_t = np.argsort(alone.xyxy[:, 0]), np.argsort(together[i].xyxy[:, 0])
        np.testing.assert_allclose(together[i].xyxy[order_t], alone.xyxy[order_a], atol=0.5)
        assert together[i].class_id[order_t].tolist() == alone.class_id[order_a].tolist()
    assert sum(int((d.class_id == detector.class_id("defect")).sum()) for d in together) >= 9


def test_a_stream_yields_each_photo_in_order_pulling_only_a_few_ahead() -> None:
    detector = Detector(DEFAULT_MODELS_DIR / "cplid-cascade")
    images = [cv2.imread(str(FIXTURE_IMAGES[i % len(FIXTURE_IMAGES)])) for i in range(14)]
    images = [np.ascontiguousarray(img[:, 30 * i:]) for i, img in enumerate(images)]
    pulled: list[int] = []

    def photos() -> Iterator[np.ndarray]:
        for i, img in enumerate(images):
            pulled.append(i)
            yield img

    ahead = []
    streamed = []
    for dets in detector.stream(photos()):
        ahead.append(len(pulled) - len(streamed))
        streamed.append(dets)
    assert len(streamed) == len(images)
    # the first stage runs a chunk ahead, results wait for STREAM_LOOKAHEAD later photos
    assert max(ahead) <= 2 * REQUEST_BATCH + STREAM_LOOKAHEAD + 1
    assert ahead[-1] == 1  # at the end nothing is pulled beyond the photos
    for i, img in enumerate(images):  # the same boxes as the photo alone, in the same order
        [alone] = detector([img])
        assert len(alone) == len(streamed[i]) > 0, f"photo {i}"
        order_a, order_s = np.argsort(alone.xyxy[:, 0]), np.argsort(streamed[i].xyxy[:, 0])
        np.testing.assert_allclose(streamed[i].xyxy[order_s], alone.xyxy[order_a], atol=0.5)


def test_a_stream_left_early_leaves_no_output_behind_in_the_runners() -> None:
    detector = Detector(DEFAULT_MODELS_DIR / "cplid-cascade")
    images = [cv2.imread(str(path)) for path in FIXTURE_IMAGES] * 4
    stream = detector.stream(images)
    next(stream)
    stream.close()  # requests still running are collected, not left in the runners
    for stage in detector.stages.values():
        assert getattr(stage.runner, "_outputs", {}) == {}
    assert len(detector(images[:2])) == 2  # and the detector goes on


@pytest.mark.parametrize("backend", BACKENDS)
def test_cascade_runs_end_to_end_on_a_fixture_photo(
    random_model: Path, photo: np.ndarray, backend: Backend
) -> None:
    # one thread: this checks results, not speed, and stays quick on a busy 2-core CI box
    detector = Detector(random_model, backend=backend, threads=1)
    assert detector.backend == backend
    [dets] = detector([photo])
    assert isinstance(dets, Detections)
    h, w = photo.shape[:2]
    assert np.all(dets.xyxy >= 0) and np.all(dets.xyxy[:, [0, 2]] <= w)
    assert np.all(dets.xyxy[:, [1, 3]] <= h)
    insulators = dets.filter(class_ids=[0])
    defects = dets.filter(class_ids=[1])
    assert len(insulators) > 0 and len(defects) > 0
    assert set(dets.severity[dets.class_id == 1].tolist()) == {3}
    # every defect lies inside a tile cut along one of the insulators
    best = insulators
    tiles = np.array([t for box in best.xyxy
                      for t in tiles_along(tuple(box.tolist()), (w, h), 320, 0.25)])
    inside = ((defects.xyxy[:, None, 0] >= tiles[None, :, 0])
              & (defects.xyxy[:, None, 1] >= tiles[None, :, 1])
              & (defects.xyxy[:, None, 2] <= tiles[None, :, 2])
              & (defects.xyxy[:, None, 3] <= tiles[None, :, 3]))
    assert inside.any(axis=1).all()


def test_card_thresholds_filter_the_output(random_model: Path, photo: np.ndarray) -> None:
    card = _with_thresholds(random_model, 0.5)
    # random networks never score 0.5: nothing passes the gate or the reporting threshold
    [dets] = Detector(card, backend=BACKENDS[-1])([photo])
    assert len(dets) == 0


def test_sliced_inference_merges_windows_of_a_large_photo(random_model: Path) -> None:
    big = cv2.resize(cv2.imread(str(FIXTURE_IMAGES[1])), (2000, 1500))
    # report every insulator box (score floor 0) but gate none, so only slicing is exercised
    card = _with_thresholds(random_model, 1.0)
    detector = Detector(card, backend=BACKENDS[-1], sliced=True, slice_px=1024, score_floor=0.0)
    windows = detector.slice_windows((2000, 1500))
    assert windows == [(0, 0, 1024, 1024), (820, 0, 1844, 1024), (976, 0, 2000, 1024),
                       (0, 476, 1024, 1500), (820, 476, 1844, 1500), (976, 476, 2000, 1500)]
    [dets] = detector([big])
    # the same as the whole photo's boxes and every window's, moved to the photo and merged
    stage = detector.stages["insulator"]
    conf = detector._stage_conf(stage)
    parts = stage.detect([big, *(big[y1:y2, x1:x2] for x1, y1, x2, y2 in windows)], conf=conf)
    moved = [parts[0], *(p.shifted(w[0], w[1]) for p, w in zip(parts[1:], windows, strict=True))]
    expected = Detections.merge(moved).with_greedy_merge(0.5)
    assert len(dets) == len(expected) > 0
    assert np.allclose(dets.xyxy, expected.xyxy) and np.allclose(dets.confidence, expected.confidence)
    assert np.all(dets.xyxy[:, 2] <= 2000) and np.all(dets.xyxy[:, 3] <= 1500)


def test_a_weight_file_that_does_not_match_its_sha256_is_refused(
    random_model: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(random_model, copy)
    with (copy / "net.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        Detector(copy, backend="onnx")


def test_a_backend_without_export_is_a_clear_error(random_model: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "no-onnx"
    shutil.copytree(random_model, copy)
    (copy / "net.onnx").unlink()
    with pytest.raises(InferenceError, match="onnx"):
        Detector(copy, backend="onnx")


def test_bad_images_are_refused(random_model: Path) -> None:
    detector = Detector(random_model, backend=BACKENDS[-1])
    with pytest.raises(InferenceError, match="BGR uint8"):
        detector([np.zeros((10, 10), dtype=np.uint8)])
    assert detector([]) == []


def test_detect_cli_writes_results_and_reports_a_corrupt_file(
    random_model: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for src in FIXTURE_IMAGES:
        (photos / src.name).write_bytes(src.read_bytes())
    (photos / "broken.jpg").write_bytes(FIXTURE_IMAGES[0].read_bytes()[:300])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "detect", str(photos), "--out", str(out), "--model", str(random_model),
        "--backend", BACKENDS[-1], "--annotate",
    ])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert [Path(r["image"]).name for r in rows] == [p.name for p in FIXTURE_IMAGES]
    assert all(r["width"] == 1152 and r["height"] == 864 for r in rows)
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [Path(e["image"]).name for e in errors] == ["broken.jpg"]
    coco = json.loads((out / "coco_results.json").read_text())
    assert len(coco) == sum(len(r["detections"]) for r in rows)
    assert {c["image_id"] for c in coco} <= {1, 2, 3}
    assert sorted(p.name for p in (out / "annotated").iterdir()) == [p.name for p in FIXTURE_IMAGES]
    run = json.loads((out / "run.json").read_text())
    assert (run["images"], run["errors"]) == (3, 1)
    assert not list(out.glob(".*.partial"))


def test_detect_cli_missing_path_is_a_clear_error_and_writes_nothing(
    random_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["detect", str(tmp_path / "missing"), "--out", str(out),
                                      "--model", str(random_model)])
    assert result.exit_code == 2
    assert "no such file" in result.output
    assert not out.exists() or not any(out.iterdir())


def test_evaluate_cli_writes_the_documented_json(random_model: Path, tmp_path: Path) -> None:
    target = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["evaluate", "--data", str(FIXTURES), "--model",
                                      str(random_model), "--backend", BACKENDS[-1],
                                      "--json", str(target)])
    assert result.exit_code == 0, result.output
    report = json.loads(target.read_text())
    assert report["images"] == 3
    assert set(report["classes"]) == {"insulator", "defect"}
    for _name, row in report["classes"].items():
        assert {"precision", "recall", "ap50", "ap50_95", "tp", "fp", "fn"} <= set(row)
        assert row["tp"] + row["fn"] == 3  # one insulator and one defect per fixture photo
    assert "image_recall" in report["classes"]["defect"]
    assert "image_recall" not in report["classes"]["insulator"]


def test_evaluate_refuses_a_folder_without_images(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path), "--model",
                                      str(tmp_path)])
    assert result.exit_code == 2


BUNDLED = sorted(p.parent for p in DEFAULT_MODELS_DIR.glob("*/card.yaml"))


@pytest.mark.skipif(not BUNDLED, reason="no trained model bundled under models/ yet")
@pytest.mark.parametrize("model_dir", BUNDLED, ids=[p.name for p in BUNDLED])
def test_bundled_model_finds_the_defect_in_each_fixture_photo(model_dir: Path) -> None:
    detector = Detector(model_dir)  # loads offline, checks sha256, fastest backend
    images = [cv2.imread(str(p)) for p in FIXTURE_IMAGES]
    results = detector(images)
    defect = detector.class_id("defect")
    for path, dets in zip(FIXTURE_IMAGES, results, strict=True):
        truth = [o.xyxy for o in read_voc(FIXTURES / "annotations" / f"{path.stem}.xml").objects
                 if o.name == "defect"]
        found = dets.filter(class_ids=[defect])
        assert len(found), f"{path.name}: no defect reported"
        assert box_iou(found.xyxy, truth).max() >= 0.5, f"{path.name}: defect box misplaced"


def test_evaluate_folder_accepts_any_detect_callable(tmp_path: Path) -> None:
    def perfect(images: Sequence[np.ndarray]) -> list[Detections]:
        # answers the ground truth of the fixture photos, in stream order
        out = []
        for path in FIXTURE_IMAGES[: len(images)]:
            ann = read_voc(FIXTURES / "annotations" / f"{path.stem}.xml")
            names = ["insulator", "defect"]
            out.append(Detections(xyxy=[o.xyxy for o in ann.objects],
                                  confidence=[0.9] * len(ann.objects),
                                  class_id=[names.index(o.name) for o in ann.objects],
                                  severity=[0] * len(ann.objects)))
        return out

    report = evaluate_folder(perfect, FIXTURES, class_names=["insulator", "defect"],
                             conf_threshold={0: 0.25, 1: 0.3}, batch_size=8)
    assert report["classes"]["defect"] == {
        "precision": 1.0, "recall": 1.0, "ap50": 1.0, "ap50_95": 1.0, "tp": 3, "fp": 0, "fn": 0,
        "ground_truth": 3, "image_recall": 1.0, "images_with_class": 3,
        "max_f1": {"threshold": pytest.approx(0.9), "score": pytest.approx(0.9),
                   "precision": 1.0, "recall": 1.0, "f1": 1.0},
    }


class _CountingDetector(Detector):
    """The real detector, noting how many Detections objects are alive every fifth photo."""

    photos = 0
    most_alive = 0

    def stream(self, images: Iterable[np.ndarray]) -> Iterator[Detections]:
        for dets in super().stream(images):
            self.photos += 1
            if self.photos % 5 == 1:
                # type() reads the C-level type: isinstance() would touch __class__ of every
                # object
                alive = sum(type(o) is Detections for o in gc.get_objects())
                self.most_alive = max(self.most_alive, alive)
            yield dets


def test_detect_to_folder_streams_200_photos_holding_only_a_few_results(
    random_model: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(200):
        cv2.imwrite(str(photos / f"p{i:03d}.jpg"), rng.integers(0, 255, (48, 64, 3), np.uint8))
    # thresholds of 1.0: no insulator passes, so each photo costs one small forward pass
    card = _with_thresholds(random_model, 1.0)
    before = sum(type(o) is Detections for o in gc.get_objects())
    detector = _CountingDetector(card, backend=BACKENDS[-1])
    run = detect_to_folder(detector, [photos], tmp_path / "out", batch_size=4)
    assert run["images"] == 200
    assert detector.photos == 200  # one stream for the whole run
    lines = (tmp_path / "out" / "detections.jsonl").read_text().splitlines()
    assert len(lines) == 200
    assert len(json.loads((tmp_path / "out" / "coco_images.json").read_text())) == 200
    # results are written and dropped photo by photo: only the photos in flight hold boxes
    # (two first-stage chunks of four and STREAM_LOOKAHEAD + 1 waiting for their tiles)
    assert detector.most_alive - before <= 2 * REQUEST_BATCH + STREAM_LOOKAHEAD + 1


# ---------------------------------------------------------------------- int8 quantization
def _node_feeding(model: Any, name_part: str, op_type: str) -> list[str]:
    """Type of the node feeding input 0 of each ``op_type`` op whose name holds ``name_part``."""
    return [op.input(0).get_source_output().get_node().get_type_name()
            for op in model.get_ops()
            if op.get_type_name() == op_type and name_part in op.get_friendly_name()]


@pytest.mark.skipif(not backend_available("openvino"), reason="needs openvino")
def test_int8_quantization_adds_a_checked_network_that_auto_prefers(
    random_model: Path, photo: np.ndarray, tmp_path: Path
) -> None:
    import openvino as ov

    from vision.train.quantize import QuantizeOptions, quantize_model

    folder = tmp_path / "m"
    shutil.copytree(random_model, folder)
    card = quantize_model(folder, FIXTURE_IMAGES, QuantizeOptions(samples=6))
    for name, stage in card.stages.items():
        assert stage.openvino_int8 == f"{name}_int8_openvino_model"
        assert f"{name}_int8_openvino_model/{name}.xml" in card.sha256
    assert "3 train photos" in card.training.model_extra["quantization"]["calibration"]
    load_card(folder)  # every hash, the new ones included, matches
    detector = Detector(folder)
    assert detector.backend == "openvino-int8"
    # the backbone runs on int8 activations; the head's output convolutions stay in f32
    model = ov.Core().read_model(str(folder / "insulator_int8_openvino_model/insulator.xml"))
    assert "FakeQuantize" in _node_feeding(model, "/model.0/conv/", "Convolution")
    head = _node_feeding(model, "cv3.0.2/", "Convolution") + _node_feeding(
        model, "cv2.0.2/", "Convolution")
    assert head and "FakeQuantize" not in head
    # same network up to quantization noise: the box rows of both runtimes agree closely
    blob, _ = letterbox(photo, IMGSZ)
    f32 = load_runner(card.stage_path("insulator", "openvino"), "openvino", imgsz=IMGSZ)(blob[None])
    int8 = load_runner(card.stage_path("insulator", "openvino-int8"), "openvino-int8",
                       imgsz=IMGSZ)(blob[None])
    assert int8.shape == f32.shape
    assert np.corrcoef(int8[0, :4].ravel(), f32[0, :4].ravel())[0, 1] > 0.99


@pytest.mark.skipif(not backend_available("openvino"), reason="needs openvino")
def test_quantization_without_calibration_input_leaves_the_model_as_it_was(
    random_model: Path, tmp_path: Path
) -> None:
    from vision.errors import QuantizeError
    from vision.train.quantize import quantize_model

    folder = tmp_path / "m"
    shutil.copytree(random_model, folder)
    before = sorted(p.name for p in folder.iterdir())
    card_text = (folder / "card.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(QuantizeError, match="no input"):
        quantize_model(folder, [broken])
    assert sorted(p.name for p in folder.iterdir()) == before
    assert (folder / "card.yaml").read_text(encoding="utf-8") == card_text


def _mosaic(width: int, height: int, at: Sequence[tuple[int, int]]) -> tuple[np.ndarray, list[Any]]:
    """The fixture photos pasted at native scale into a large grey drone-sized photo, with their
    ground truth moved to where they sit (``(name, xyxy)`` pairs)."""
    rng = np.random.default_rng(0)
    canvas = rng.normal(128, 12, (height, width, 3)).clip(0, 255).astype(np.uint8)
    truth: list[Any] = []
    for path, (x, y) in zip(FIXTURE_IMAGES, at, strict=True):
        img = cv2.imread(str(path))
        h, w = img.shape[:2]
        canvas[y:y + h, x:x + w] = img
        for o in read_voc(FIXTURES / "annotations" / f"{path.stem}.xml").objects:
            x1, y1, x2, y2 = o.xyxy
            truth.append((o.name, (x1 + x, y1 + y, x2 + x, y2 + y)))
    return canvas, truth


@pytest.mark.skipif(not BUNDLED, reason="no trained model bundled under models/ yet")
def test_the_bundled_cascade_slices_a_full_size_drone_photo_by_itself() -> None:
    big, truth = _mosaic(4000, 3000, [(150, 200), (1500, 1950), (2700, 700)])
    detector = Detector(DEFAULT_MODELS_DIR / "cplid-cascade")  # no slicing option given
    # the first stage was trained on 1152 px photos: a 4000x3000 one is cut into 20 windows of
    # that size (and run whole); a CPLID-sized photo is not sliced
    assert detector.slice_px == 1152
    assert len(detector.slice_windows((4000, 3000))) == 20
    assert detector.slice_windows((1152, 864)) == []
    [dets] = detector([big])
    defect = detector.class_id("defect")
    found = dets.filter(class_ids=[defect])
    defects = [xyxy for name, xyxy in truth if name == "defect"]
    assert len(found) and len(defects) == 3
    # every pasted photo's defect is found where it sits in the large photo
    assert (box_iou(np.asarray(defects, dtype=float), found.xyxy).max(axis=1) >= 0.5).all()
    whole_only = Detector(DEFAULT_MODELS_DIR / "cplid-cascade", sliced=False)
    first = detector.first_stage([big])[0].filter(class_ids=[detector.class_id("insulator")])
    unsliced = whole_only.first_stage([big])[0].filter(class_ids=[detector.class_id("insulator")])
    insulators = np.asarray([xyxy for name, xyxy in truth if name == "insulator"], dtype=float)

    def recall(d: Detections) -> float:
        return float((box_iou(insulators, d.xyxy).max(axis=1) >= 0.5).mean()) if len(d) else 0.0

    assert recall(first) > recall(unsliced)  # the windows find insulators the whole pass misses


@pytest.mark.skipif(not BUNDLED, reason="no trained model bundled under models/ yet")
def test_the_sliced_first_stage_gives_the_boxes_sahi_gives_with_the_same_network() -> None:
    from sahi.predict import get_sliced_prediction

    from benches.bench_slicing import matched, sahi_model

    big, _ = _mosaic(3000, 2250, [(100, 100), (1700, 1300), (1750, 150)])
    detector = Detector(DEFAULT_MODELS_DIR / "cplid-cascade")
    stage = detector.stages["insulator"]
    ours = detector.first_stage([big])[0]
    # SAHI's default slicing and merge, driving the same network through the same runtime
    model = sahi_model(stage, detector._stage_conf(stage), detector.class_names)
    result = get_sliced_prediction(
        big, model, slice_height=detector.slice_px, slice_width=detector.slice_px,
        overlap_height_ratio=detector.slice_overlap, overlap_width_ratio=detector.slice_overlap,
        verbose=0,
    )  # fmt: skip
    preds = result.object_prediction_list
    theirs = Detections(
        xyxy=[p.bbox.to_xyxy() for p in preds], confidence=[p.score.value for p in preds],
        class_id=[0] * len(preds), severity=[0] * len(preds),
    )  # fmt: skip
    assert len(theirs) > 3 and len(detector.slice_windows((3000, 2250))) == 12
    assert matched(theirs, ours) == len(theirs) == len(ours)
