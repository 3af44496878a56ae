"""``fieldops vision detect`` and ``fieldops vision evaluate`` (typer sub-app ``app``).

``detect PATH... --out DIR`` writes, in DIR:

- ``detections.jsonl``: one line per photo: path, size, and its boxes (xyxy, class, confidence,
  severity), photos without findings included (a ledger check needs to know they were seen);
- ``coco_results.json``: COCO "results" (``image_id``, ``category_id`` = class id + 1, ``bbox``
  as x, y, w, h, ``score``), with ``coco_images.json`` mapping image ids to file names;
- ``errors.jsonl``: photos that could not be read, with the reason (the batch goes on);
- ``annotated/*.jpg`` with ``--annotate``; ``run.json``: model, backend, counts, timing.

Files are written under temporary names and renamed when the run completes, so an interrupted
or failed run leaves no half-written results behind.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, cast

import cv2
import numpy as np
import numpy.typing as npt
import typer

from vision.detect.detections import Detections
from vision.detect.images import ImageRecord, iter_image_paths, stream_images
from vision.train.model_card import BACKEND_CHOICES, BACKEND_HELP

if TYPE_CHECKING:
    from vision.detect.inference import BackendChoice, Detector

app = typer.Typer(help="Defect detection on drone photos.", no_args_is_help=True)

OUTPUT_FILES = ("detections.jsonl", "coco_results.json", "coco_images.json", "errors.jsonl",
                "run.json")
# BGR colours by severity: markers green, minor yellow, severe red
_COLOURS = {0: (80, 200, 60), 1: (0, 215, 255), 2: (0, 140, 255)}
_SEVERE = (40, 40, 230)


class _Outputs:
    """Result files written under ``.partial`` names, renamed into place by ``commit()``."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.tmp = {name: out_dir / f".{name}.partial" for name in OUTPUT_FILES}
        self.handles: dict[str, IO[str]] = {}
        self.annotated_tmp = out_dir / ".annotated.partial"

    def open(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("detections.jsonl", "coco_results.json", "coco_images.json",
                     "errors.jsonl"):
            self.handles[name] = self.tmp[name].open("w", encoding="utf-8")
        # the two JSON arrays are streamed element by element: memory stays flat over a batch
        self.first = {"coco_results.json": True, "coco_images.json": True}
        for name in self.first:
            self.handles[name].write("[")

    def write_line(self, name: str, row: dict[str, Any]) -> None:
        self.handles[name].write(json.dumps(row, ensure_ascii=False) + "\n")

    def append(self, name: str, item: dict[str, Any]) -> None:
        """Add one element to a streamed JSON array file."""
        sep = "\n" if self.first[name] else ",\n"
        self.first[name] = False
        self.handles[name].write(sep + json.dumps(item, ensure_ascii=False))

    def commit(self, run: dict[str, Any]) -> None:
        for name in self.first:
            self.handles[name].write("\n]\n")
        for handle in self.handles.values():
            handle.close()
        self.tmp["run.json"].write_text(json.dumps(run, indent=2, ensure_ascii=False),
                                        encoding="utf-8")
        for name, tmp in self.tmp.items():
            tmp.replace(self.out_dir / name)
        if self.annotated_tmp.is_dir():
            # this run's pictures replace an earlier run's, like the other result files
            shutil.rmtree(self.out_dir / "annotated", ignore_errors=True)
            self.annotated_tmp.replace(self.out_dir / "annotated")

    def discard(self) -> None:
        for handle in self.handles.values():
            handle.close()
        for tmp in self.tmp.values():
            tmp.unlink(missing_ok=True)
        shutil.rmtree(self.annotated_tmp, ignore_errors=True)


def annotate_image(
    image: npt.NDArray[np.uint8], dets: Detections, class_names: Sequence[str]
) -> npt.NDArray[np.uint8]:
    """Return a copy of ``image`` with boxes and labels drawn (OpenCV's built-in font)."""
    out = image.copy()
    thickness = max(2, round(max(image.shape[:2]) / 600))
    scale = max(0.5, max(image.shape[:2]) / 1800)
    for i in np.argsort(dets.severity, kind="stable"):  # severe boxes drawn last, on top
        x1, y1, x2, y2 = (round(float(v)) for v in dets.xyxy[i])
        sev = int(dets.severity[i])
        colour = _COLOURS.get(sev, _SEVERE)
        cid = int(dets.class_id[i])
        label = f"{class_names[cid] if cid < len(class_names) else cid} {dets.confidence[i]:.2f}"
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else y2 + th + 4
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 4, ty + base), colour, -1)
        cv2.putText(out, label, (x1 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return out


def _annotated_name(record: ImageRecord, used: set[str]) -> str:
    # two photos named DJI_0001.JPG in different folders must not overwrite each other
    name = f"{record.path.stem}.jpg"
    if name in used:
        name = f"{record.path.stem}_{record.index}.jpg"
    used.add(name)
    return name


@contextmanager
def _progress(total: int | None, enabled: bool) -> Iterator[Any]:
    from tqdm import tqdm  # type: ignore[import-untyped]

    bar = tqdm(total=total, unit="photo", disable=not enabled, file=sys.stderr,
               dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def detect_to_folder(
    detector: Detector,
    sources: Sequence[Path],
    out_dir: Path,
    *,
    annotate: bool = False,
    batch_size: int = 8,
    progress: bool = False,
) -> dict[str, Any]:
    """Detect on every photo under ``sources`` and write the result files into ``out_dir``.

    Args:
        detector: a loaded :class:`vision.detect.inference.Detector`.
        sources: photo files and/or folders.
        out_dir: output folder (created).
        annotate: also write ``annotated/<name>.jpg`` with the boxes drawn.
        batch_size: decoded photos held ready ahead of the detector (with the photos the
            detector's stream holds, this bounds memory).
        progress: show a progress bar on stderr.

    Returns:
        The run summary also written to ``run.json``.

    Raises:
        ImageSourceError: a source path does not exist (before anything is written).
    """
    from vision.detect.pipeline import detected_records  # the batch pipeline: loaded on use

    paths = list(iter_image_paths(sources))
    outputs = _Outputs(out_dir)
    writer = _BatchWriter(detector, outputs, annotate=annotate)
    n_errors = 0
    started = time.perf_counter()
    outputs.open()
    try:
        with (_progress(len(paths), progress) as bar,
              stream_images(paths, prefetch=batch_size) as stream):
            # one stream for the whole run: the detector never drains between photos
            for record, dets in detected_records(detector, stream, batch_size):
                bar.update(1)
                if dets is None:
                    n_errors += 1
                    outputs.write_line("errors.jsonl",
                                       {"image": str(record.path), "error": record.error})
                    continue
                writer.write(record, dets)
        run = writer.summary(n_errors, time.perf_counter() - started)
        outputs.commit(run)
    except BaseException:
        outputs.discard()
        raise
    return run


class _BatchWriter:
    """Writes each photo's rows (JSONL, COCO, annotated JPEG) and counts the classes."""

    def __init__(self, detector: Detector, outputs: _Outputs, *, annotate: bool) -> None:
        self.detector = detector
        self.outputs = outputs
        self.annotate = annotate
        self.names = detector.class_names
        self.counts = dict.fromkeys(self.names, 0)
        self.used_names: set[str] = set()
        self.images = 0

    def write(self, record: ImageRecord, dets: Detections) -> None:
        """Write one photo's rows (JSONL, COCO, annotated JPEG)."""
        names, outputs = self.names, self.outputs
        width, height = record.size
        image_id = self.images + 1
        outputs.append("coco_images.json", {"id": image_id, "file_name": str(record.path),
                                            "width": width, "height": height})
        outputs.write_line("detections.jsonl", {
            "image": str(record.path), "width": width, "height": height,
            "truncated": record.truncated, "detections": dets.to_rows(names),
        })
        for row in dets.to_coco_results(image_id):
            outputs.append("coco_results.json", row)
        for cid in dets.class_id.tolist():
            self.counts[names[cid]] += 1
        if self.annotate and record.image is not None:
            outputs.annotated_tmp.mkdir(parents=True, exist_ok=True)
            target = outputs.annotated_tmp / _annotated_name(record, self.used_names)
            ok = cv2.imwrite(str(target), annotate_image(record.image, dets, names),
                             [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                raise OSError(f"cannot write {target}")
        self.images += 1

    def summary(self, n_errors: int, elapsed: float) -> dict[str, Any]:
        """The run summary written to ``run.json``."""
        detector, names = self.detector, self.names
        return {
            "model": detector.card.name,
            "model_version": detector.card.version,
            "backend": detector.backend,
            "sliced": "auto" if detector.sliced is None else detector.sliced,
            "conf_threshold": {names[i]: t for i, t in sorted(detector.thresholds.items())},
            "images": self.images,
            "errors": n_errors,
            "detections": self.counts,
            "seconds": round(elapsed, 2),
            "ms_per_image": round(1000 * elapsed / max(1, self.images + n_errors), 1),
        }


#: --model's help: the default is the promoted model (``fieldops vision promote``).
CURRENT_MODEL_HELP = (
    "Model name under models/ or a model folder (default: the current model, "
    "models/current.yaml, else cplid-cascade)."
)


def current_model(model: str | None) -> str:
    """``model``, else the model ``fieldops vision promote`` made current."""
    from vision.train.model_card import DEFAULT_MODELS_DIR
    from vision.train.promotion import current_model_name

    return model or current_model_name(DEFAULT_MODELS_DIR)

def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@app.command("detect")
def detect_command(
    paths: Annotated[list[Path], typer.Argument(help="Photos and/or folders of photos.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    model: Annotated[str | None, typer.Option(help=CURRENT_MODEL_HELP)] = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    annotate: Annotated[bool, typer.Option("--annotate", help="Write annotated JPEGs.")] = False,
    sliced: Annotated[
        bool | None,
        typer.Option(
            "--slice/--no-slice",
            help="Also run the first stage on windows of every photo larger than a window "
            "(--slice) or never (--no-slice); unset: photos over 1.5x the model's native "
            "photo size (its card's native_px) are sliced.",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=64, help="Decoded photos held ready ahead "
                          "of the detector (memory; the detector streams photo by photo).")] = 8,
    threads: Annotated[int, typer.Option(min=1, max=64)] = 2,
) -> None:
    """Detect insulators and defects in drone photos; write JSONL, COCO results, errors."""
    from vision.detect.inference import Detector
    from vision.errors import VisionError

    if backend not in BACKEND_CHOICES:
        raise _fail(f"unknown backend {backend!r}: use {', '.join(BACKEND_CHOICES)}")
    try:
        detector = Detector(current_model(model), backend=cast("BackendChoice", backend),
                            threads=threads,
                            sliced=sliced)
        run = detect_to_folder(detector, paths, out, annotate=annotate, batch_size=batch_size,
                               progress=sys.stderr.isatty())
    except (VisionError, OSError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(json.dumps(run, ensure_ascii=False))


@app.command("evaluate")
def evaluate_command(
    data: Annotated[Path, typer.Option("--data", help="Folder with images/ and annotations/.")],
    model: Annotated[str | None, typer.Option(help=CURRENT_MODEL_HELP)] = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the figures here.")]
    = None,
    threads: Annotated[int, typer.Option(min=1, max=64)] = 2,
) -> None:
    """Per-class precision, recall, AP50, AP50-95 (and image recall of defects) on a folder."""
    from vision.detect.inference import Detector
    from vision.errors import VisionError
    from vision.train.evaluate import EVAL_SCORE_FLOOR, evaluate_folder

    if backend not in BACKEND_CHOICES:
        raise _fail(f"unknown backend {backend!r}: use {', '.join(BACKEND_CHOICES)}")
    try:
        detector = Detector(current_model(model), backend=cast("BackendChoice", backend),
                            threads=threads,
                            score_floor=EVAL_SCORE_FLOOR)
        with _progress(None, sys.stderr.isatty()) as bar:
            result = evaluate_folder(
                detector, data, class_names=detector.class_names,
                conf_threshold=detector.thresholds, on_image=lambda: bar.update(1),
            )
    except (VisionError, OSError) as exc:
        raise _fail(str(exc)) from exc
    result = {**result, "model": detector.card.name, "model_version": detector.card.version,
              "backend": detector.backend}
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_path.with_name(f".{json_path.name}.partial")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(json_path)
    typer.echo(text)
