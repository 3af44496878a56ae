"""Throughput of the detection pipeline vs the same pipeline on plain ``YOLO.predict`` calls.

Both pipelines read the same photos with the same streaming reader, run the same cascade logic
(insulator stage, tiles along insulators, defect stage, merge) and produce Detections; they
differ only in how each model call is made:

- ours: own cv2 letterbox + the chosen runtime backend (``auto``: the int8 OpenVINO networks
  where the model folder has them, quantized from the same weights; else OpenVINO f32, ONNX
  Runtime, torch; 2 threads) + own numpy decode/NMS; ``--also-backend openvino`` adds a row
  for another backend (e.g. f32) in the same alternating rounds;
- baseline: ``YOLO(weights).predict(images, imgsz=stage imgsz, conf=..., iou=...)`` with every
  other Ultralytics default (torch, the thread count Ultralytics picks, its own pre/post).

Also printed: the backend's raw forward-pass time per network call, how much of the pipeline's
time is spent inside forward passes, and the RSS after 100 and after ``--rss-count`` photos.

Usage::

    .venv/bin/python benches/bench_inference.py                       # random yolo11n, synthetic
    .venv/bin/python benches/bench_inference.py PHOTOS_DIR --model cplid-cascade --count 100
    .venv/bin/python benches/bench_inference.py --rss-count 10000

Timings are only comparable within one run (same machine, same load): both pipelines are run
in alternating rounds so background load hits both alike.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil  # type: ignore[import-untyped]  # an Ultralytics dependency
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vision.offline import prepare_offline

prepare_offline()

from vision.detect.detections import Detections  # noqa: E402
from vision.detect.images import stream_images  # noqa: E402
from vision.detect.inference import (  # noqa: E402
    Detector,
    StageRunner,
    export_runtimes,
    letterbox,
    save_untrained_weights,
)
from vision.train.model_card import hash_weights  # noqa: E402

PHOTO_WH = (1152, 864)


# ---------------------------------------------------------------------- inputs
def synthetic_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """Write ``count`` 1152x864 JPEGs that compress like photos (smooth areas, edges, noise)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = PHOTO_WH
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for i in range(count):
        base = (np.sin(xx / rng.uniform(40, 200)) + np.cos(yy / rng.uniform(40, 200))) * 60 + 120
        img = np.repeat(base[..., None], 3, axis=2) + rng.normal(0, 8, (h, w, 3))
        for _ in range(12):
            x1, y1 = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.rectangle(img, (x1, y1), (x1 + int(rng.integers(20, 300)),
                                          y1 + int(rng.integers(20, 200))), colour, -1)
        path = folder / f"synthetic_{i:03d}.jpg"
        cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 80])
        paths.append(path)
    return paths


def random_single_model(folder: Path, imgsz: int = 640) -> Path:
    """A single-stage card over a random yolo11n (2 classes), exported to ONNX and OpenVINO."""
    weights = save_untrained_weights(folder / "main.pt", ["insulator", "defect"])
    export_runtimes(weights, imgsz=imgsz)
    files = ["main.pt", "main.onnx", "main_openvino_model"]
    card = {
        "name": "random-yolo11n", "version": 1, "kind": "single",
        "classes": [{"id": 0, "name": "insulator", "role": "asset_marker", "severity": 0},
                    {"id": 1, "name": "defect", "role": "defect", "severity": 3}],
        "stages": {"main": {"weights": "main.pt", "onnx": "main.onnx",
                            "openvino": "main_openvino_model", "imgsz": imgsz, "conf": 0.25,
                            "iou": 0.7, "classes": ["insulator", "defect"]}},
        "conf_threshold": {"insulator": 0.25, "defect": 0.25},
        "sha256": hash_weights(folder, files),
        "training": {"data": "none", "selection": "none", "seed": 0, "command": "random"},
    }
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return folder


# ---------------------------------------------------------------------- baseline
class PredictStage(StageRunner):
    """A stage whose model call is a plain ``YOLO(weights).predict(...)``."""

    yolo: Any = None

    def detect(self, images: Sequence[Any], *, conf: float) -> list[Detections]:
        results = self.yolo.predict(list(images), imgsz=self.imgsz, conf=conf,
                                    iou=self.stage.iou, verbose=False)
        out = []
        for r in results:
            boxes = r.boxes
            cls = self.class_ids[boxes.cls.numpy().astype(np.int64)]
            out.append(Detections(xyxy=boxes.xyxy.numpy(), confidence=boxes.conf.numpy(),
                                  class_id=cls, severity=self.severities[cls]))
        return out


def baseline_detector(model: str) -> Detector:
    """The same Detector (cascade logic, thresholds) with every model call through predict."""
    from ultralytics import YOLO

    detector = Detector(model, backend="torch")
    for name, stage in list(detector.stages.items()):
        wrapped = PredictStage(stage.name, stage.stage, stage.runner, stage.class_ids,
                               stage.severities, stage.batch_size)
        wrapped.yolo = YOLO(str(detector.card.stage_path(name, "torch")), task="detect")
        detector.stages[name] = wrapped
    return detector


# ---------------------------------------------------------------------- measuring
class ForwardClock:
    """Wraps a runner to add up the time spent inside forward passes."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.backend = runner.backend
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = self.runner(batch)
        self.seconds += time.perf_counter() - start
        self.calls += batch.shape[0]
        return out  # type: ignore[no-any-return]


def run_pipeline(
    detector: Detector, paths: Sequence[Path], batch_size: int = 4
) -> tuple[float, float, int]:
    """Stream, decode and detect ``paths``; return (wall seconds, CPU seconds, boxes found).

    CPU seconds are the whole process's (all threads): on a machine shared with other work
    they show the cost of a photo even when the wall clock mostly measures waiting.
    """
    boxes = 0
    cpu_start = time.process_time()
    start = time.perf_counter()
    pending = []
    with stream_images(paths) as stream:
        for record in stream:
            if record.image is None:
                continue
            pending.append(record.image)
            if len(pending) == batch_size:
                boxes += sum(len(d) for d in detector(pending))
                pending = []
        if pending:
            boxes += sum(len(d) for d in detector(pending))
    return time.perf_counter() - start, time.process_time() - cpu_start, boxes


def raw_forward_ms(stage: StageRunner, repeats: int, batch: int = 8) -> float:
    """Median time per image of forward passes on prepared blobs, ``batch`` images per call
    (enough for OpenVINO to give each of its two streams a full request: the backend's peak
    rate on this machine)."""
    blob = letterbox(np.full((PHOTO_WH[1], PHOTO_WH[0], 3), 90, np.uint8), stage.imgsz)[0]
    blobs = np.repeat(blob[None], batch, axis=0)
    stage.runner(blobs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        stage.runner(blobs)
        times.append((time.perf_counter() - start) / batch)
    return 1000 * statistics.median(times)


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="?", type=Path, help="folder of 1152x864 photos")
    parser.add_argument("--model", help="model name/folder (default: random yolo11n, 640)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--count", type=int, default=40, help="photos per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds")
    parser.add_argument("--rss-count", type=int, default=10_000,
                        help="photos streamed for the RSS check (0 skips it)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--also-backend", action="append", default=[],
                        help="another backend of ours timed in the same rounds (repeatable)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    if args.photos is None:
        paths = synthetic_photos(tmp / "photos", 20)
    else:
        paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
    if not paths:
        sys.exit(f"no JPEGs in {args.photos}")
    model = args.model or str(random_single_model(tmp / "model"))
    timed = list(itertools.islice(itertools.cycle(paths), args.count))

    ours = Detector(model, backend=args.backend)
    clocks = {name: ForwardClock(stage.runner) for name, stage in ours.stages.items()}
    for name, clock in clocks.items():
        ours.stages[name].runner = clock
    base = None if args.skip_baseline else baseline_detector(model)
    others = {b: Detector(model, backend=b) for b in args.also_backend}
    others_s: dict[str, list[float]] = {b: [] for b in others}
    others_cpu: dict[str, list[float]] = {b: [] for b in others}
    print(f"model {ours.card.name} ({ours.card.kind}), backend {ours.backend}, "
          f"{len(paths)} photos cycled, {args.count} per round, {os.cpu_count()} CPUs")

    run_pipeline(ours, timed[:4])  # warm-up: first-call allocations, lazy init
    if base is not None:
        run_pipeline(base, timed[:4])
    for other in others.values():
        run_pipeline(other, timed[:4])
    ours_s: list[float] = []
    base_s: list[float] = []
    ours_cpu: list[float] = []
    base_cpu: list[float] = []
    for clock in clocks.values():
        clock.seconds, clock.calls = 0.0, 0
    for _ in range(args.rounds):
        seconds, cpu, ours_boxes = run_pipeline(ours, timed)
        ours_s.append(seconds)
        ours_cpu.append(cpu)
        if base is not None:
            seconds, cpu, base_boxes = run_pipeline(base, timed)
            base_s.append(seconds)
            base_cpu.append(cpu)
        for b, other in others.items():
            seconds, cpu, _ = run_pipeline(other, timed)
            others_s[b].append(seconds)
            others_cpu[b].append(cpu)
    n = args.count
    ours_ms = 1000 * statistics.median(ours_s) / n
    ours_cpu_ms = 1000 * statistics.median(ours_cpu) / n
    print("\nend to end per photo (decode + pre + forward + post), median of rounds")
    print(f"  {'pipeline':<44}{'ms/photo':>10}{'photos/s':>10}{'CPU ms/photo':>14}")
    label = f"ours ({ours.backend}, 2 threads)"
    print(f"  {label:<44}{ours_ms:>10.1f}{1000 / ours_ms:>10.1f}{ours_cpu_ms:>14.1f}")
    for b in others:
        ms = 1000 * statistics.median(others_s[b]) / n
        cpu_ms = 1000 * statistics.median(others_cpu[b]) / n
        print(f"  {f'ours ({b}, 2 threads)':<44}{ms:>10.1f}{1000 / ms:>10.1f}{cpu_ms:>14.1f}")
    if base is not None:
        base_ms = 1000 * statistics.median(base_s) / n
        base_cpu_ms = 1000 * statistics.median(base_cpu) / n
        print(f"  {'baseline (YOLO.predict, Ultralytics defaults)':<44}{base_ms:>10.1f}"
              f"{1000 / base_ms:>10.1f}{base_cpu_ms:>14.1f}")
        print(f"  speed-up: {base_ms / ours_ms:.2f}x wall, {base_cpu_ms / ours_cpu_ms:.2f}x CPU "
              f"(target >= 3x wall); boxes per round: ours {ours_boxes}, baseline {base_boxes}")
    print(f"  machine load average while measuring: {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs (figures are only meaningful on an otherwise idle machine)")

    print("\nraw forward pass of the backend (blobs ready, 8 per call), vs the pipeline")
    forward_total = 0.0
    for name, stage in ours.stages.items():
        clock = clocks[name]
        stage.runner = clock.runner
        ms = raw_forward_ms(stage, repeats=10)
        per_photo = clock.calls / (n * args.rounds)
        forward_total += ms * per_photo
        print(f"  stage {name:<10} imgsz {stage.imgsz:<5} {ms:7.1f} ms/forward "
              f"({1000 / ms:6.1f}/s), {per_photo:5.2f} forwards/photo, in-pipeline "
              f"{1000 * clock.seconds / max(1, clock.calls):6.1f} ms/forward")
    print(f"  forward-only time per photo {forward_total:.1f} ms = "
          f"{1000 / forward_total:.1f} photos/s; the pipeline reaches "
          f"{100 * forward_total / ours_ms:.0f}% of that rate")

    if args.rss_count:
        print(f"\nRSS while streaming {args.rss_count} photos through our pipeline")
        del base, others
        gc.collect()
        stream_paths = itertools.islice(itertools.cycle(paths), args.rss_count)
        marks = {100: 0.0, args.rss_count: 0.0}
        seen = 0
        start = time.perf_counter()
        pending = []
        with stream_images(list(stream_paths)) as stream:
            for record in stream:
                if record.image is None:
                    continue
                pending.append(record.image)
                seen += 1
                if len(pending) == 4:
                    ours(pending)
                    pending = []
                if seen in marks:
                    if pending:
                        ours(pending)
                        pending = []
                    marks[seen] = rss_mb()
        elapsed = time.perf_counter() - start
        r100, rend = marks[100], marks[args.rss_count]
        print(f"  after 100: {r100:.0f} MB; after {args.rss_count}: {rend:.0f} MB "
              f"({100 * (rend - r100) / r100:+.1f}%); {1000 * elapsed / seen:.1f} ms/photo")


if __name__ == "__main__":
    main()
