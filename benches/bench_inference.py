"""Throughput of the detection pipeline vs the same pipeline on plain ``YOLO.predict`` calls.

Both pipelines read the same photos with the same streaming reader, run the same cascade logic
(insulator stage, tiles along insulators, defect stage, merge) and produce Detections; they
differ only in how each model call is made:

- ours: own cv2 letterbox + the chosen runtime backend (``auto``: the int8 OpenVINO networks
  where the model folder has them, quantized from the same weights; else OpenVINO f32, ONNX
  Runtime, torch; 2 threads) + own numpy decode/NMS; ``--also-backend openvino`` adds a row
  for another backend (e.g. f32) in the same alternating rounds;
- baseline: ``YOLO(weights).predict(images, imgsz=stage imgsz, conf=..., iou=...)`` with every
  other Ultralytics default (torch, the thread count Ultralytics picks, its own pre/post);
- the one-network alternative (order 17, item 1: what an inspector would otherwise run):
  ``YOLO(<first stage's weights>).predict(photo_path, imgsz=640)`` in a plain loop, every other
  setting default, reading the same photos by path, in a Python process of its own (none of
  our process settings there: our detector keeps freed memory blocks in its process,
  ``vision.detect.allocator``); the same loop in the bench's own process is a second row
  (``--skip-plain`` leaves both out);
- with ``--one-thread``, ours with one thread beside ours with the default two: the share of
  the speed-up that comes from using both cores (off by default: a second detector loaded in
  the same process slows ours).

Also printed: the backend's raw forward-pass time per network call (measured in every round
right after ours, on the inputs ours fed each stage, blobs ready, 8 per call), the pipeline's
rate as a share of that forward-only rate, and the RSS after 100 and after ``--rss-count``
photos.

Usage::

    .venv/bin/python benches/bench_inference.py                       # random yolo11n, synthetic
    .venv/bin/python benches/bench_inference.py PHOTOS_DIR --model cplid-cascade --count 100
    .venv/bin/python benches/bench_inference.py --rss-count 10000
    .venv/bin/python benches/bench_inference.py PHOTOS_DIR --model cplid-cascade --write-card

``--write-card`` records the figures, with the machine, the date and the command (paths
repository-relative or ``<dataset>/...``), in the model's ``card.yaml`` (``speed.pipeline_bench``)
and re-renders the speed section of its README: no speed figure in a card is typed by hand.

Timings are only comparable within one run (same machine, same load): every contender is run
in alternating rounds so background load hits all alike. Times per photo are marginal: each
round runs a contender on its first 8 photos and on all of them, and the difference is divided
by the difference in photos (what any run costs once, whatever its length, is out of it).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
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
    Done,
    StageJob,
    StageRunner,
    export_runtimes,
    letterbox,
    save_untrained_weights,
)
from vision.train.model_card import (  # noqa: E402
    hash_weights,
    record_pipeline_bench,
    resolve_model,
)

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

    def start(self, images: Sequence[Any], *, conf: float) -> StageJob:
        results = self.yolo.predict(list(images), imgsz=self.imgsz, conf=conf,
                                    iou=self.stage.iou, verbose=False)
        out = []
        for r in results:
            boxes = r.boxes
            cls = self.class_ids[boxes.cls.numpy().astype(np.int64)]
            out.append(Detections(xyxy=boxes.xyxy.numpy(), confidence=boxes.conf.numpy(),
                                  class_id=cls, severity=self.severities[cls]))
        return Done(out)


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
    """Wraps a runner to count the images its forward passes were given and keep the first
    ``SAMPLE`` of them (the real inputs the forward-only rate is then measured on)."""

    SAMPLE = 64

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.backend = runner.backend
        self.calls = 0
        self.sample: list[np.ndarray] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.start(batch).result()  # type: ignore[no-any-return]

    def start(self, batch: np.ndarray) -> Any:
        self.calls += batch.shape[0]
        self.sample += [image.copy() for image in batch[:self.SAMPLE - len(self.sample)]]
        return self.runner.start(batch)


def run_pipeline(detector: Detector, paths: Sequence[Path]) -> tuple[float, float, int]:
    """Stream, decode and detect ``paths`` as ``fieldops vision detect`` does (one detector
    stream for the run); return (wall seconds, CPU seconds, boxes found).

    CPU seconds are the whole process's (all threads): on a machine shared with other work
    they show the cost of a photo even when the wall clock mostly measures waiting.
    """
    boxes = 0
    cpu_start = time.process_time()
    start = time.perf_counter()
    with stream_images(paths, prefetch=8) as stream:
        photos = (record.image for record in stream if record.image is not None)
        for dets in detector.stream(photos):
            boxes += len(dets)
    return time.perf_counter() - start, time.process_time() - cpu_start, boxes


def raw_forward_ms(runner: Any, inputs: Sequence[np.ndarray], repeats: int,
                   batch: int = 8) -> float:
    """Time per image of forward passes on ready inputs, ``batch`` images per call (enough for
    OpenVINO to give each of its two streams a full request: the backend's peak rate on this
    machine), ``repeats`` calls back to back. A rate, as the pipeline's: the whole loop's time
    over the images it ran (a median per call would leave out the machine's hiccups, which the
    pipeline's time keeps). ``inputs``: canvases the pipeline fed the stage (cycled)."""
    cycled = itertools.cycle(inputs)
    batches = [np.stack(list(itertools.islice(cycled, batch)))
               for _ in range(max(1, len(inputs) // batch))]
    runner(batches[0])
    start = time.perf_counter()
    for i in range(repeats):
        runner(batches[i % len(batches)])
    return 1000 * (time.perf_counter() - start) / (repeats * batch)


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="?", type=Path, help="folder of 1152x864 photos")
    parser.add_argument("--model", help="model name/folder (default: random yolo11n, 640)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--count", type=int, default=40, help="photos per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds")
    parser.add_argument("--rss-count", type=int, default=10_000,
                        help="photos streamed for the RSS check (0 skips it)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-plain", action="store_true",
                        help="leave out the one-network 640 predict loop")
    parser.add_argument("--one-thread", action="store_true",
                        help="also time ours on one thread (a detector of its own, loaded in "
                             "the same process: its idle OpenVINO streams slow the others)")
    parser.add_argument("--also-backend", action="append", default=[],
                        help="another backend of ours timed in the same rounds (repeatable)")
    parser.add_argument("--write-card", action="store_true",
                        help="record the figures (machine, date, command) in the model's "
                             "card.yaml speed.pipeline_bench and its README (needs --model)")
    args = parser.parse_args(argv)
    if args.write_card and not args.model:
        parser.error("--write-card needs --model (a bundled model, not the random one)")
    return args


def photo_paths(args: argparse.Namespace, tmp: Path) -> list[Path]:
    if args.photos is None:
        return synthetic_photos(tmp / "photos", 20)
    paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
    if not paths:
        sys.exit(f"no JPEGs in {args.photos}")
    return paths


class PlainLoop:
    """The one-network alternative: ``YOLO(weights).predict(path, imgsz=640)`` photo by photo,
    every other setting Ultralytics' default (it reads and decodes each photo itself)."""

    def __init__(self, weights: Path) -> None:
        from ultralytics import YOLO

        self.weights = weights
        self.yolo = YOLO(str(weights), task="detect")

    def run(self, paths: Sequence[Path]) -> tuple[float, float, int]:
        """(wall seconds, CPU seconds, boxes) for ``paths``, one predict call per photo."""
        boxes = 0
        cpu_start = time.process_time()
        start = time.perf_counter()
        for path in paths:
            boxes += sum(len(r.boxes) for r in self.yolo.predict(str(path), imgsz=640,
                                                                 verbose=False))
        return time.perf_counter() - start, time.process_time() - cpu_start, boxes


def _plain_worker(conn: Connection, weights: str) -> None:
    """Child process of :class:`PlainProcess`: time the plain loop on each list of paths sent."""
    try:
        plain = PlainLoop(Path(weights))
    except Exception as exc:  # reported to the parent, which stops there
        conn.send(f"cannot load {weights}: {exc!r}")
        return
    conn.send("ready")
    while (paths := conn.recv()) is not None:
        conn.send(plain.run([Path(p) for p in paths]))


class PlainProcess:
    """The plain loop in a Python process of its own, started as an inspector would start one:
    none of our process settings apply there (our detector keeps freed memory blocks in its
    process, :mod:`vision.detect.allocator`; the loop in the bench's own process would get that
    too). Each round is sent over a pipe and timed inside the child the same way."""

    def __init__(self, weights: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_plain_worker, args=(child, str(weights)),
                                   name="plain-loop", daemon=True)
        self.process.start()
        child.close()
        reply = self.conn.recv()
        if reply != "ready":
            raise RuntimeError(f"plain loop process: {reply}")

    def run(self, paths: Sequence[Path]) -> tuple[float, float, int]:
        """(wall seconds, CPU seconds of the child, boxes) for ``paths``."""
        self.conn.send([str(p) for p in paths])
        wall, cpu_s, boxes = self.conn.recv()
        return float(wall), float(cpu_s), int(boxes)

    def close(self) -> None:
        self.conn.send(None)
        self.process.join(timeout=30)


class Contenders:
    """Our detector (forward passes clocked), the baselines and the other variants of ours."""

    def __init__(self, model: str, args: argparse.Namespace) -> None:
        self.ours = Detector(model, backend=args.backend)
        self.clocks = {name: ForwardClock(stage.runner) for name, stage in self.ours.stages.items()}
        for name, clock in self.clocks.items():
            self.ours.stages[name].runner = clock
        self.base = None if args.skip_baseline else baseline_detector(model)
        self.others = {b: Detector(model, backend=b) for b in args.also_backend}
        if args.one_thread:
            self.others["1 thread"] = Detector(model, backend=args.backend, threads=1)
        first = next(iter(self.ours.card.stages))
        weights = self.ours.card.stage_path(first, "torch")
        # the loop as an inspector runs it (own process), and in this process for comparison
        self.plain = None if args.skip_plain else PlainProcess(weights)
        self.plain_here = None if args.skip_plain else PlainLoop(weights)

    def all(self) -> dict[str, Detector]:
        """Every pipeline by row name, ours first."""
        out = {"ours": self.ours}
        if self.base is not None:
            out["baseline"] = self.base
        out.update(self.others)
        return out

    def run(self, name: str, paths: Sequence[Path]) -> tuple[float, float, int]:
        """Time one contender (a pipeline of ours, the baseline or the plain loop) on ``paths``."""
        if name == "plain":
            assert self.plain is not None
            return self.plain.run(paths)
        if name == "plain here":
            assert self.plain_here is not None
            return self.plain_here.run(paths)
        return run_pipeline(self.all()[name], paths)

    def forward_ms(self) -> dict[str, float]:
        """ms per forward pass of each stage of ours, on the inputs ours fed it, blobs ready."""
        out = {}
        for name, stage in self.ours.stages.items():
            clock = self.clocks[name]
            inputs = clock.sample or [letterbox(
                np.full((PHOTO_WH[1], PHOTO_WH[0], 3), 90, np.uint8), stage.imgsz)[0]]
            out[name] = raw_forward_ms(clock.runner, inputs, repeats=24)
        return out

    def names(self) -> list[str]:
        return [*self.all(), *(["plain", "plain here"] if self.plain is not None else [])]

    def close_plain(self) -> None:
        """End the plain loop's process and drop the in-process loop."""
        if self.plain is not None:
            self.plain.close()
        self.plain = self.plain_here = None


Rounds = tuple[dict[str, float], dict[str, float], dict[str, int], dict[str, list[float]],
               list[float]]


#: Photos of the short run whose time is taken off a round's (marginal time per photo).
SHORT_RUN = 8


def timed_rounds(contenders: Contenders, timed: Sequence[Path], rounds: int) -> Rounds:
    """Alternating rounds after a warm-up; medians of the marginal (wall, CPU) ms per photo,
    boxes, each round's forward-only ms per forward of each stage of ours, and each round's
    marginal wall ms per photo of ours.

    Each round times every contender on the same photos once they are warm, twice: on the
    first ``SHORT_RUN`` photos, then on all of them. The time per photo is the marginal one,
    (time for all - time for the first ``SHORT_RUN``) / (photos - ``SHORT_RUN``), as order 17
    times ``fieldops vision detect``: what a run costs whatever its length (the first photo's
    decode before any forward pass, the last tiles draining) is out of it. The forward-only
    rate is measured in every round right after ours, on the inputs ours fed each stage, so
    that both see the same machine (measured once at the end, after the torch contenders, it
    came out far slower than in the rounds)."""
    n = len(timed)
    if n <= SHORT_RUN:
        raise SystemExit(f"--count must be more than {SHORT_RUN} (the short run)")
    for name in contenders.names():
        contenders.run(name, timed)  # warm-up: first-call allocations, lazy init, heap growth
    for clock in contenders.clocks.values():
        clock.calls = 0
    wall: dict[str, list[float]] = {name: [] for name in contenders.names()}
    cpu: dict[str, list[float]] = {name: [] for name in contenders.names()}
    forward: dict[str, list[float]] = {name: [] for name in contenders.clocks}
    boxes: dict[str, int] = {}
    for _ in range(rounds):
        for name in contenders.names():
            counted = {stage: clock.calls for stage, clock in contenders.clocks.items()}
            short_s, short_cpu, _ = contenders.run(name, timed[:SHORT_RUN])
            for stage, clock in contenders.clocks.items():
                clock.calls = counted[stage]  # forwards per photo: the full runs' only
            seconds, cpu_s, boxes[name] = contenders.run(name, timed)
            wall[name].append((seconds - short_s) / (n - SHORT_RUN))
            cpu[name].append((cpu_s - short_cpu) / (n - SHORT_RUN))
            if name == "ours":
                for stage, ms in contenders.forward_ms().items():
                    forward[stage].append(ms)
    return ({k: 1000 * statistics.median(v) for k, v in wall.items()},
            {k: 1000 * statistics.median(v) for k, v in cpu.items()}, boxes, forward,
            [1000 * t for t in wall["ours"]])


def print_end_to_end(contenders: Contenders, wall: dict[str, float], cpu: dict[str, float],
                     boxes: dict[str, int]) -> dict[str, Any]:
    """Print the per-photo table; return its figures for the card."""
    print(f"\nend to end per photo (decode + pre + forward + post), marginal: (time for all "
          f"- time for the first {SHORT_RUN}) / (photos - {SHORT_RUN}), median of rounds")
    print(f"  {'pipeline':<44}{'ms/photo':>10}{'photos/s':>10}{'CPU ms/photo':>14}")
    labels = {"ours": f"ours ({contenders.ours.backend}, 2 threads)",
              "baseline": "baseline (YOLO.predict, Ultralytics defaults)",
              **{b: f"ours ({b}, 2 threads)" for b in contenders.others},
              "1 thread": f"ours ({contenders.ours.backend}, 1 thread)",
              "plain": "one network, YOLO.predict(path, imgsz=640)",
              "plain here": "  the same loop in this process"}
    for name in wall:
        print(f"  {labels[name]:<44}{wall[name]:>10.1f}{1000 / wall[name]:>10.1f}"
              f"{cpu[name]:>14.1f}")
    figures: dict[str, Any] = {
        "backend": f"{contenders.ours.backend}, 2 threads",
        "ours_ms_per_photo": round(wall["ours"], 1),
        "ours_cpu_ms_per_photo": round(cpu["ours"], 1),
    }
    for b in contenders.others:
        figures[f"ours_{b.replace('-', '_').replace(' ', '_')}_ms_per_photo"] = round(wall[b], 1)
    if "baseline" in wall:
        speed_up, cpu_up = wall["baseline"] / wall["ours"], cpu["baseline"] / cpu["ours"]
        print(f"  speed-up: {speed_up:.2f}x wall, {cpu_up:.2f}x CPU (target >= 3x wall); "
              f"boxes per round: ours {boxes['ours']}, baseline {boxes['baseline']}")
        figures |= {"baseline_yolo_predict_ms_per_photo": round(wall["baseline"], 1),
                    "baseline_cpu_ms_per_photo": round(cpu["baseline"], 1),
                    "speed_up_wall": round(speed_up, 2), "speed_up_cpu": round(cpu_up, 2),
                    "boxes_per_round": {"ours": boxes["ours"], "baseline": boxes["baseline"]}}
    if "plain" in wall:
        figures |= print_plain_ratio(wall, cpu, boxes)
    load = os.getloadavg()[0]
    print(f"  machine load average while measuring: {load:.1f} on "
          f"{os.cpu_count()} CPUs (figures are only meaningful on an otherwise idle machine)")
    figures["load_average"] = round(load, 1)
    return figures


def print_plain_ratio(wall: dict[str, float], cpu: dict[str, float],
                      boxes: dict[str, int]) -> dict[str, Any]:
    """The cascade against the one-network 640 predict loop (order 17's target: >= 3x), run in
    its own process; also against the same loop in this process (our allocator setting)."""
    ratio = wall["plain"] / wall["ours"]
    one_thread = ""
    if "1 thread" in wall:
        one_thread = f"{wall['plain'] / wall['1 thread']:.2f}x with one thread of ours, "
    here = wall["plain here"] / wall["ours"]
    print(f"  vs the one-network 640 predict loop: {ratio:.2f}x wall (target >= 3x), "
          f"{one_thread}{cpu['plain'] / cpu['ours']:.2f}x CPU; {here:.2f}x wall vs the same "
          f"loop in this process; boxes per round: plain {boxes['plain']} (its insulator "
          f"boxes, no defect stage)")
    figures = {"plain_640_predict_ms_per_photo": round(wall["plain"], 1),
               "plain_640_cpu_ms_per_photo": round(cpu["plain"], 1),
               "speed_up_vs_plain_640_wall": round(ratio, 2),
               "plain_640_in_bench_process_ms_per_photo": round(wall["plain here"], 1),
               "speed_up_vs_plain_640_in_bench_process_wall": round(here, 2)}
    if "1 thread" in wall:
        figures["speed_up_vs_plain_640_one_thread"] = round(wall["plain"] / wall["1 thread"], 2)
    return figures


def print_forward_share(contenders: Contenders, ours_ms: float, photos: int,
                        forward: dict[str, list[float]], ours_rounds: list[float]
                        ) -> dict[str, Any]:
    """Raw forward passes per stage (median of the rounds) vs the pipeline; return the
    forward-only figures: the share of the medians, and the median of each round's share
    (forward-only measured right after ours in the same round: drift of the machine between
    rounds cancels out)."""
    print("\nraw forward pass of the backend (inputs the pipeline fed it, ready, 8 per call), "
          "median of rounds, vs the pipeline")
    forward_total = 0.0
    per_round = [0.0] * len(ours_rounds)
    for name, stage in contenders.ours.stages.items():
        ms = statistics.median(forward[name])
        per_photo = contenders.clocks[name].calls / photos
        forward_total += ms * per_photo
        per_round = [t + r * per_photo for t, r in zip(per_round, forward[name], strict=True)]
        print(f"  stage {name:<10} imgsz {stage.imgsz:<5} {ms:7.2f} ms/forward "
              f"({1000 / ms:6.1f}/s), {per_photo:5.2f} forwards/photo")
    shares = [f / o for f, o in zip(per_round, ours_rounds, strict=True)]
    paired = statistics.median(shares)
    print(f"  forward-only time per photo {forward_total:.1f} ms = "
          f"{1000 / forward_total:.1f} photos/s; the pipeline reaches "
          f"{100 * forward_total / ours_ms:.0f}% of that rate (target >= 85%)")
    print(f"  round by round (forward-only / ours, ms): "
          f"{', '.join(f'{f:.1f}/{o:.1f}' for f, o in zip(per_round, ours_rounds, strict=True))}"
          f"; median of the rounds' shares {100 * paired:.0f}%")
    return {"forward_only_ms_per_photo": round(forward_total, 1),
            "share_of_forward_only_rate": round(forward_total / ours_ms, 2),
            "share_of_forward_only_rate_median_of_rounds": round(paired, 2)}


def measure_rss(ours: Detector, paths: Sequence[Path], count: int) -> dict[str, Any]:
    """Stream ``count`` photos through our pipeline; RSS after 100 and after ``count``."""
    print(f"\nRSS while streaming {count} photos through our pipeline")
    gc.collect()
    marks = {100: 0.0, count: 0.0}
    seen = 0
    start = time.perf_counter()
    with stream_images(list(itertools.islice(itertools.cycle(paths), count))) as stream:
        photos = (record.image for record in stream if record.image is not None)
        for _ in ours.stream(photos):
            seen += 1
            if seen in marks:
                marks[seen] = rss_mb()
    elapsed = time.perf_counter() - start
    r100, rend = marks[100], marks[count]
    print(f"  after 100: {r100:.0f} MB; after {count}: {rend:.0f} MB "
          f"({100 * (rend - r100) / r100:+.1f}%); {1000 * elapsed / seen:.1f} ms/photo")
    return {"rss_mb_after_100": round(r100), f"rss_mb_after_{count}": round(rend)}


# ---------------------------------------------------------------------- recording
REPO = Path(__file__).resolve().parents[1]


def portable_path(value: str) -> str:
    """A path as the card may name it: repository-relative, else ``<dataset>/`` + its last two
    parts (no path of this machine); anything that is not an existing path is kept."""
    path = Path(value).expanduser()
    if not path.exists():
        return value
    path = path.resolve()
    if path.is_relative_to(REPO):
        return path.relative_to(REPO).as_posix()
    return "/".join(("<dataset>", *path.parts[-2:]))


def recorded_command(argv: Sequence[str]) -> str:
    return " ".join(["benches/bench_inference.py", *(portable_path(a) for a in argv)])


def machine_description() -> str:
    """CPU model and count, OS; no host name."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}"


def write_card(model: str, figures: dict[str, Any], argv: Sequence[str]) -> None:
    recorded = {
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "command": recorded_command(argv),
        **figures,
    }
    folder = resolve_model(model)
    record_pipeline_bench(folder, recorded)
    print(f"\nrecorded in {portable_path(str(folder / 'card.yaml'))} speed.pipeline_bench")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    paths = photo_paths(args, tmp)
    model = args.model or str(random_single_model(tmp / "model"))
    timed = list(itertools.islice(itertools.cycle(paths), args.count))
    contenders = Contenders(model, args)
    ours = contenders.ours
    print(f"model {ours.card.name} ({ours.card.kind}), backend {ours.backend}, "
          f"{len(paths)} photos cycled, {args.count} per round, {os.cpu_count()} CPUs")
    wall, cpu, boxes, forward, ours_rounds = timed_rounds(contenders, timed, args.rounds)
    figures = {"photos_per_round": args.count, "rounds": args.rounds,
               **print_end_to_end(contenders, wall, cpu, boxes)}
    figures |= print_forward_share(contenders, wall["ours"], args.count * args.rounds, forward,
                                   ours_rounds)
    contenders.close_plain()
    if args.rss_count:
        contenders.base, contenders.others = None, {}
        figures |= measure_rss(ours, paths, args.rss_count)
    if args.write_card:
        write_card(args.model, figures, argv)


if __name__ == "__main__":
    main()
