"""Training of the bundled detectors (the only training module importing Ultralytics).

Two variants are trained from ``yolo11n``'s model .yaml (no pretrained weights exist offline):

- ``single``: one detector, classes ``insulator`` and ``defect``, on the full frame;
- ``cascade``: an ``insulator`` detector on the full frame, then a ``defect`` detector on square
  native-resolution tiles cut along insulator boxes (:mod:`vision.detect.tiling`), so a ~66x47 px
  missing cap is learnt at its own scale instead of ~37x26 px in a 640 letterbox.

Everything is written under a work dir (default ``~/.cache/fieldops``): converted datasets in
``datasets/``, Ultralytics runs with ``last.pt``/``best.pt`` in ``runs/<name>``, logs in ``logs/``.
A run whose ``last.pt`` exists resumes; a finished one is skipped. ``best.pt`` is Ultralytics'
val-fitness selection (the val split is only used for selection, never for training).

Dataset building is plain Python + Pillow + numpy; Ultralytics is imported lazily inside the
functions that train, validate or export, after :func:`vision.offline.prepare_offline`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from PIL import Image

from vision.detect.tiling import Tile, boxes_to_tile, tiles_along
from vision.errors import TrainingError
from vision.hashing import sha256_file
from vision.offline import (
    cache_root,
    prepare_offline,
    restore_pillow_open,
    tracing_warnings_ignored,
)
from vision.train.voc import VocAnnotation, read_voc, voc_to_yolo_lines

if TYPE_CHECKING:
    from vision.train.model_card import ModelCard

Variant = Literal["single", "cascade"]
StageName = Literal["main", "insulator", "defect"]

LOG = logging.getLogger("vision.train.training")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SPLITS = ("train", "val")
BASE_MODEL = "yolo11n"  # the scale letter in the file name is how Ultralytics picks the scale
CPLID_CLASSES = ("insulator", "defect")
# Bumped whenever the dataset layout or conversion changes, so cached conversions are rebuilt.
DATASET_FORMAT = 1


TileBoxes = list[tuple[int, tuple[float, float, float, float]]]
TileItem = tuple[Path, Tile, TileBoxes]


@dataclass(frozen=True)
class TileOptions:
    """How the cascade's defect-stage tiles are cut from training photos.

    Attributes:
        tile_px: square tile side in native pixels.
        overlap: minimum overlap of neighbouring tiles along an insulator (fraction of tile_px).
        jitter: random shift/scale of the GT insulator box before tiling (fraction of its size),
            so the defect stage sees tiles like those cut along imperfect detected boxes.
        positive_passes: jittered passes over insulators that hold a defect (more distinct
            crops of the rare class).
        negatives_per_positive: defect-free tiles kept per tile with a defect (sampled).
        min_visible: a defect box clipped by a tile edge is kept if this much of it is visible.
        min_px: ... and it is at least this many pixels wide and high.
    """

    tile_px: int = 320
    overlap: float = 0.25
    jitter: float = 0.1
    positive_passes: int = 3
    negatives_per_positive: float = 1.0
    min_visible: float = 0.4
    min_px: float = 8.0


@dataclass(frozen=True)
class StagePlan:
    """One Ultralytics training: which dataset, which classes, image size and epochs."""

    run_name: str
    stage: StageName
    classes: tuple[str, ...]
    imgsz: int
    epochs: int
    tiles: TileOptions | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Options shared by every stage of one ``train`` invocation."""

    data_root: Path
    work_dir: Path = field(default_factory=cache_root)
    seed: int = 0
    batch: int = 16
    patience: int = 100
    resume: bool = True
    cache_images: bool = True
    #: Epochs of LR warm-up. Ultralytics' default 3 would be half of a short CPU budget.
    warmup_epochs: float = 1.0
    #: Wall-clock budget per stage in hours (Ultralytics ``time``): after each epoch the epoch
    #: count and LR schedule are re-fitted to the measured epoch time, so a run on a shared,
    #: unevenly loaded CPU still ends on time. ``None`` trains exactly ``epochs``.
    hours: float | None = None
    #: Start from these weights (an Ultralytics .pt of the same classes, e.g. a bundled
    #: model's stage) instead of the model .yaml: continued training or fine-tuning.
    init_weights: Path | None = None
    #: Ultralytics optimizer ("auto" picks SGD or AdamW by run length) and initial LR
    #: (None: Ultralytics' default for the optimizer).
    optimizer: str = "auto"
    lr0: float | None = None


@dataclass(frozen=True)
class StageResult:
    """Where a finished stage left its weights."""

    plan: StagePlan
    run_dir: Path
    best: Path
    last: Path
    data_yaml: Path


# --------------------------------------------------------------------------- dataset building


def split_items(data_root: Path, split: str) -> list[tuple[Path, Path | None]]:
    """List ``(image, annotation or None)`` of one split of a CPLID-like folder.

    The folder holds ``<split>/images/*.jpg`` and ``<split>/annotations/<stem>.xml``; an image
    without annotation is a negative (no objects).

    Raises:
        TrainingError: the split or its images folder is missing or empty.
    """
    images_dir = data_root / split / "images"
    if not images_dir.is_dir():
        raise TrainingError(f"{images_dir} does not exist: --data needs {split}/images/")
    ann_dir = data_root / split / "annotations"
    items: list[tuple[Path, Path | None]] = []
    for image in sorted(images_dir.iterdir()):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        ann = ann_dir / f"{image.stem}.xml"
        items.append((image.resolve(), ann if ann.is_file() else None))
    if not items:
        raise TrainingError(f"{images_dir} holds no images")
    return items


def _image_wh(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            # EXIF orientation is ignored on purpose: VOC boxes refer to the stored pixels.
            return im.size
    except OSError as exc:
        raise TrainingError(f"cannot read image {path}: {exc}") from exc


def _annotation(ann: Path | None, image: Path) -> VocAnnotation:
    if ann is None:
        w, h = _image_wh(image)
        return VocAnnotation(filename=image.name, width=w, height=h, objects=())
    return read_voc(ann)


def _fingerprint(data_root: Path, params: dict[str, Any]) -> str:
    # Source listing (names, sizes, mtimes) + conversion parameters: a change rebuilds.
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for split in SPLITS:
        for sub in ("images", "annotations"):
            folder = data_root / split / sub
            if folder.is_dir():
                for p in sorted(folder.iterdir()):
                    st = p.stat()
                    digest.update(f"{split}/{sub}/{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()


@contextmanager
def _building(out_dir: Path, fingerprint: str) -> Iterator[Path | None]:
    """Yield a temp folder to build into (renamed to ``out_dir`` on success), or None if current.

    A half-built dataset never sits at ``out_dir``: an interrupted build leaves only the temp
    folder, which the next build removes.
    """
    stamp = out_dir / "fingerprint.txt"
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == fingerprint:
        yield None
        return
    tmp = out_dir.with_name(out_dir.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        (tmp / "fingerprint.txt").write_text(fingerprint + "\n", encoding="utf-8")
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_frame_dataset(data_root: Path, out_dir: Path, classes: Sequence[str]) -> Path:
    """Convert a CPLID-like VOC folder into a full-frame YOLO dataset.

    Images are linked (not copied); labels keep only ``classes`` (others, e.g. ``defect`` for
    the insulator stage, are skipped).

    Returns:
        The absolute path of the dataset's ``data.yaml``.
    """
    data_root = data_root.resolve()
    out_dir = out_dir.resolve()
    class_map = {name: i for i, name in enumerate(classes)}
    fp = _fingerprint(data_root, {"kind": "frame", "classes": list(classes), "v": DATASET_FORMAT})
    with _building(out_dir, fp) as tmp:
        if tmp is not None:
            for split in SPLITS:
                img_dir, lbl_dir = tmp / "images" / split, tmp / "labels" / split
                img_dir.mkdir(parents=True)
                lbl_dir.mkdir(parents=True)
                for image, ann in split_items(data_root, split):
                    voc = _annotation(ann, image)
                    lines = voc_to_yolo_lines(
                        voc, class_map, image_wh=_image_wh(image), unknown="skip"
                    )
                    # Symlink to the source image; Ultralytics maps /images/ to /labels/ on the
                    # link's own path, so the labels next to it are found.
                    (img_dir / image.name).symlink_to(image)
                    (lbl_dir / f"{image.stem}.txt").write_text(
                        "".join(f"{line}\n" for line in lines), encoding="utf-8"
                    )
            # data.yaml paths point at the final folder, written before the rename.
            _write_data_yaml_at(tmp, out_dir, classes)
    return out_dir / "data.yaml"


def jitter_box(
    box: tuple[float, float, float, float], rng: np.random.Generator, frac: float
) -> tuple[float, float, float, float]:
    """Shift and scale a box by up to ``frac`` of its size (simulates a detector's box)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2 + rng.uniform(-frac, frac) * w
    cy = (y1 + y2) / 2 + rng.uniform(-frac, frac) * h
    w *= 1 + rng.uniform(-frac, frac)
    h *= 1 + rng.uniform(-frac, frac)
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def plan_tiles(
    voc: VocAnnotation,
    image_wh: tuple[int, int],
    *,
    marker: str,
    targets: Sequence[str],
    options: TileOptions,
    rng: np.random.Generator | None,
) -> list[tuple[Tile, list[tuple[int, tuple[float, float, float, float]]]]]:
    """Tiles along each ``marker`` box of one image, with the target boxes each tile keeps.

    With ``rng`` the marker boxes are jittered and insulators holding a target are tiled
    ``positive_passes`` times (training); without, tiles follow the boxes exactly (val).

    Returns:
        ``[(tile, [(class_id, xyxy in tile pixels), ...]), ...]`` without duplicate tiles.
    """
    class_map = {name: i for i, name in enumerate(targets)}
    target_objs = [o for o in voc.objects if o.name in class_map]
    target_boxes = np.array([o.xyxy for o in target_objs], dtype=np.float64).reshape(-1, 4)
    seen: set[Tile] = set()
    out: list[tuple[Tile, list[tuple[int, tuple[float, float, float, float]]]]] = []
    for obj in voc.objects:
        if obj.name != marker:
            continue
        mx1, my1, mx2, my2 = obj.xyxy
        holds_target = bool(
            len(target_boxes)
            and np.any(
                (target_boxes[:, 0] < mx2)
                & (target_boxes[:, 2] > mx1)
                & (target_boxes[:, 1] < my2)
                & (target_boxes[:, 3] > my1)
            )
        )
        passes = options.positive_passes if (rng is not None and holds_target) else 1
        for _ in range(passes):
            box = obj.xyxy if rng is None else jitter_box(obj.xyxy, rng, options.jitter)
            try:
                tiles = tiles_along(box, image_wh, options.tile_px, options.overlap)
            except ValueError:
                continue  # a jittered box pushed outside the image: skip this pass
            for tile in tiles:
                if tile in seen:
                    continue
                seen.add(tile)
                kept, mask = boxes_to_tile(
                    target_boxes, tile, min_visible=options.min_visible, min_px=options.min_px
                )
                ids = [class_map[o.name] for o, m in zip(target_objs, mask, strict=True) if m]
                boxes = [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in kept]
                out.append((tile, list(zip(ids, boxes, strict=True))))
    return out


def build_tile_dataset(
    data_root: Path,
    out_dir: Path,
    *,
    marker: str = "insulator",
    targets: Sequence[str] = ("defect",),
    options: TileOptions = TileOptions(),
    seed: int = 0,
) -> Path:
    """Cut the cascade's defect-stage dataset: native-resolution tiles along GT marker boxes.

    Train: jittered tiles; every tile holding a target is kept, defect-free tiles are sampled
    (``negatives_per_positive``). Val: tiles exactly along GT boxes, all kept (the real mix the
    defect stage meets, so selection on val is honest).

    Returns:
        The absolute path of the dataset's ``data.yaml``.
    """
    data_root = data_root.resolve()
    out_dir = out_dir.resolve()
    params = {
        "kind": "tiles",
        "marker": marker,
        "targets": list(targets),
        "options": asdict(options),
        "seed": seed,
        "v": DATASET_FORMAT,
    }
    fp = _fingerprint(data_root, params)
    rng = np.random.default_rng(seed)
    with _building(out_dir, fp) as tmp:
        if tmp is None:
            return out_dir / "data.yaml"
        summary: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            img_dir, lbl_dir = tmp / "images" / split, tmp / "labels" / split
            img_dir.mkdir(parents=True)
            lbl_dir.mkdir(parents=True)
            positives: list[TileItem] = []
            negatives: list[TileItem] = []
            for image, ann in split_items(data_root, split):
                voc = _annotation(ann, image)
                wh = _image_wh(image)
                for tile, boxes in plan_tiles(
                    voc,
                    wh,
                    marker=marker,
                    targets=targets,
                    options=options,
                    rng=rng if split == "train" else None,
                ):
                    (positives if boxes else negatives).append((image, tile, boxes))
            if split == "train":
                keep_neg = min(
                    len(negatives), round(len(positives) * options.negatives_per_positive)
                )
                picks = rng.choice(len(negatives), size=keep_neg, replace=False).tolist()
                negatives = [negatives[i] for i in sorted(picks)]
            summary[split] = {"positive_tiles": len(positives), "negative_tiles": len(negatives)}
            _write_tiles(positives + negatives, img_dir, lbl_dir, options.tile_px)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        # data.yaml paths point at the final folder, written before the rename.
        _write_data_yaml_at(tmp, out_dir, targets)
        LOG.info("tile dataset %s: %s", out_dir, summary)
    return out_dir / "data.yaml"


def _write_data_yaml_at(tmp: Path, final: Path, classes: Sequence[str]) -> None:
    """Write ``tmp/data.yaml`` with absolute paths of the ``final`` folder (Ultralytics needs
    absolute paths, or it resolves them against its own datasets dir)."""
    data = {
        "path": str(final),
        "train": str(final / "images" / "train"),
        "val": str(final / "images" / "val"),
        "names": dict(enumerate(classes)),
    }
    (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _write_tiles(
    items: Sequence[tuple[Path, Tile, list[tuple[int, tuple[float, float, float, float]]]]],
    img_dir: Path,
    lbl_dir: Path,
    tile_px: int,
) -> None:
    # Group by source image so each photo is decoded once.
    by_image: dict[Path, list[tuple[Tile, list[tuple[int, tuple[float, float, float, float]]]]]]
    by_image = {}
    for image, tile, boxes in items:
        by_image.setdefault(image, []).append((tile, boxes))
    for image, tiles in by_image.items():
        with Image.open(image) as im:
            rgb = im.convert("RGB")
        for tile, boxes in tiles:
            x1, y1, x2, y2 = tile
            stem = f"{image.stem}_x{x1}_y{y1}"
            # Quality 95 keeps the re-encoding loss far below CPLID's own q80 artefacts.
            rgb.crop(tile).save(img_dir / f"{stem}.jpg", quality=95)
            tw, th = x2 - x1, y2 - y1
            lines = [
                f"{cid} {(bx1 + bx2) / 2 / tw!r} {(by1 + by2) / 2 / th!r} "
                f"{(bx2 - bx1) / tw!r} {(by2 - by1) / th!r}\n"
                for cid, (bx1, by1, bx2, by2) in boxes
            ]
            (lbl_dir / f"{stem}.txt").write_text("".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------- plans


def stage_plans(
    variant: Variant, *, epochs: int, imgsz: int | None, tiles: TileOptions
) -> list[StagePlan]:
    """The Ultralytics trainings one variant needs, in order.

    ``imgsz`` applies to the full-frame stage (default 640 single, 416 cascade insulator);
    the defect stage always trains at ``tiles.tile_px`` (native resolution by construction).
    """
    if variant == "single":
        return [StagePlan("single-main", "main", CPLID_CLASSES, imgsz or 640, epochs)]
    return [
        StagePlan("cascade-insulator", "insulator", ("insulator",), imgsz or 416, epochs),
        StagePlan("cascade-defect", "defect", ("defect",), tiles.tile_px, epochs, tiles),
    ]


def dataset_for(plan: StagePlan, config: TrainConfig) -> Path:
    """Build (or reuse) the converted dataset of a stage; return its ``data.yaml``."""
    datasets = config.work_dir / "datasets"
    if plan.tiles is not None:
        return build_tile_dataset(
            config.data_root,
            datasets / f"tiles-{'-'.join(plan.classes)}-{plan.tiles.tile_px}",
            targets=plan.classes,
            options=plan.tiles,
            seed=config.seed,
        )
    return build_frame_dataset(
        config.data_root, datasets / f"frame-{'-'.join(plan.classes)}", plan.classes
    )


def model_yaml(out_dir: Path, nc: int, base: str = BASE_MODEL) -> Path:
    """Write the package's model .yaml for ``base`` with ``nc`` classes; return its path.

    The file is named ``<base>.yaml`` because Ultralytics reads the scale (``n``) from the name.
    """
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise TrainingError("ultralytics is not installed (pip install 'fieldops[vision]')")
    family = base.rstrip("nslmx")  # yolo11n -> yolo11
    source = (
        Path(spec.origin).parent / "cfg" / "models" / family.removeprefix("yolo") / f"{family}.yaml"
    )
    if not source.is_file():
        raise TrainingError(f"no model yaml {source} in the installed ultralytics")
    cfg = yaml.safe_load(source.read_text(encoding="utf-8"))
    cfg["nc"] = nc
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{base}.yaml"
    target.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return target


# --------------------------------------------------------------------------- training


def _initial_weights(path: Path, plan: StagePlan) -> Path:
    """Check that ``path`` is an Ultralytics checkpoint with the stage's classes."""
    import torch

    path = path.expanduser().resolve()
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        model = (ckpt.get("ema") or ckpt["model"]) if isinstance(ckpt, dict) else None
        names = dict(model.names) if model is not None else None
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise TrainingError(f"{path}: not an Ultralytics checkpoint: {exc}") from exc
    if names is None or [names[i] for i in sorted(names)] != list(plan.classes):
        raise TrainingError(
            f"{path} detects {names}, but stage {plan.stage} needs classes {list(plan.classes)}"
        )
    return path


def _checkpoint_epoch(path: Path) -> tuple[int, int]:
    """Return ``(epoch saved, total epochs)`` of an Ultralytics checkpoint (epoch -1 = final)."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=False)  # our own checkpoint
    train_args = ckpt.get("train_args") or {}
    return int(ckpt.get("epoch", -1)), int(train_args.get("epochs", 0))


def _attach_log(log_file: Path) -> logging.Handler:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("ultralytics", "vision.train.training"):
        logging.getLogger(name).addHandler(handler)
    LOG.setLevel(logging.INFO)
    return handler


def train_stage(plan: StagePlan, config: TrainConfig) -> StageResult:
    """Train one stage with Ultralytics (resuming from ``last.pt`` when present).

    Returns:
        The run's folder and its ``best.pt`` (val-fitness selection) and ``last.pt``.
    """
    data_yaml = dataset_for(plan, config)
    runs = config.work_dir / "runs"
    run_dir = runs / plan.run_name
    last, best = run_dir / "weights" / "last.pt", run_dir / "weights" / "best.pt"
    handler = _attach_log(config.work_dir / "logs" / f"{plan.run_name}.log")
    try:
        prepare_offline()
        from ultralytics import YOLO  # type: ignore[attr-defined,unused-ignore]
        restore_pillow_open()  # undo Ultralytics' patch of PIL.Image.open

        if last.is_file() and config.resume:
            epoch, total = _checkpoint_epoch(last)
            if epoch == -1 or epoch + 1 >= total:
                LOG.info("%s already finished (%s); nothing to resume", plan.run_name, last)
                return StageResult(plan, run_dir, best, last, data_yaml)
            LOG.info("resuming %s from epoch %d of %d", plan.run_name, epoch + 1, total)
            YOLO(str(last)).train(resume=True)
        else:
            if run_dir.exists():
                # A fresh start must not mix with a previous run's files.
                shutil.rmtree(run_dir)
            if config.init_weights is not None:
                start = _initial_weights(config.init_weights, plan)
                LOG.info("training %s from %s: %s", plan.run_name, start, plan)
            else:
                start = model_yaml(config.work_dir / "model-cfg" / plan.run_name, len(plan.classes))
                LOG.info("training %s: %s", plan.run_name, plan)
            started = time.monotonic()
            extra: dict[str, float] = {} if config.lr0 is None else {"lr0": config.lr0}
            YOLO(str(start)).train(
                data=str(data_yaml),
                epochs=plan.epochs,
                imgsz=plan.imgsz,
                batch=config.batch,
                seed=config.seed,
                deterministic=True,
                device="cpu",
                workers=0,
                project=str(runs),
                name=plan.run_name,
                exist_ok=True,
                # False: a fresh model from the .yaml; True: keep the --init-weights.
                pretrained=config.init_weights is not None,
                amp=False,
                cache="ram" if config.cache_images else False,
                patience=config.patience,
                time=config.hours,
                # nbs = batch: one optimizer step per batch. Ultralytics' nominal 64 would
                # accumulate 4 batches per step, i.e. 4x fewer updates in a CPU-bound budget.
                nbs=config.batch,
                warmup_epochs=config.warmup_epochs,
                # Tiles are cut at native resolution; keep scale jitter small so the defect
                # stage learns defects at the size it will meet them.
                scale=0.25 if plan.tiles is not None else 0.5,
                flipud=0.5 if plan.tiles is not None else 0.0,
                optimizer=config.optimizer,
                plots=True,
                verbose=True,
                **extra,
            )
            LOG.info("%s done in %.0f s", plan.run_name, time.monotonic() - started)
    finally:
        for name in ("ultralytics", "vision.train.training"):
            logging.getLogger(name).removeHandler(handler)
        handler.close()
    if not best.is_file():
        raise TrainingError(f"training {plan.run_name} ended without {best}")
    return StageResult(plan, run_dir, best, last, data_yaml)


def train_variant(
    variant: Variant,
    config: TrainConfig,
    *,
    epochs: int,
    imgsz: int | None = None,
    tiles: TileOptions = TileOptions(),
    stages: Sequence[StageName] | None = None,
) -> list[StageResult]:
    """Train every stage of ``variant`` (or only ``stages``) one after the other."""
    plans = stage_plans(variant, epochs=epochs, imgsz=imgsz, tiles=tiles)
    if stages is not None:
        plans = [p for p in plans if p.stage in stages]
    return [train_stage(plan, config) for plan in plans]


# --------------------------------------------------------------------------- val and export


def stage_val(
    weights: Path, data_yaml: Path, imgsz: int, *, iou: float = 0.7
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Ultralytics' own val of one stage, with a per-class confidence threshold chosen on val.

    For each class the threshold is the confidence that maximises F1 on the val split (from
    Ultralytics' F1-confidence curve); precision and recall are read at that threshold.

    Returns:
        ``({class: {"precision", "recall", "ap50", "ap50_95", "conf"}}, speed)`` where speed is
        Ultralytics' torch milliseconds per image (preprocess, inference, postprocess).
    """
    prepare_offline()
    from ultralytics import YOLO  # type: ignore[attr-defined,unused-ignore]
    restore_pillow_open()  # undo Ultralytics' patch of PIL.Image.open

    metrics = YOLO(str(weights)).val(
        data=str(data_yaml),
        imgsz=imgsz,
        batch=8,
        conf=0.001,
        iou=iou,
        device="cpu",
        plots=False,
        workers=0,
        verbose=False,
    )
    box = metrics.box
    px = np.asarray(box.px, dtype=np.float64)
    out: dict[str, dict[str, float]] = {}
    for i, class_index in enumerate(box.ap_class_index):
        name = str(metrics.names[int(class_index)])
        f1 = np.asarray(box.f1_curve[i], dtype=np.float64)
        best = int(np.argmax(f1))
        # No detection ever right (F1 = 0 everywhere): no threshold can be chosen on val, so
        # fall back to Ultralytics' predict default rather than 0 (which keeps every box).
        conf = float(px[best]) if f1[best] > 0 else 0.25
        _, _, ap50, ap = box.class_result(i)
        out[name] = {
            "precision": round(float(box.p_curve[i][best]), 4),
            "recall": round(float(box.r_curve[i][best]), 4),
            "ap50": round(float(ap50), 4),
            "ap50_95": round(float(ap), 4),
            "conf": round(max(conf, 0.01), 3),
        }
    speed = {k: round(float(v), 1) for k, v in metrics.speed.items() if k != "loss"}
    return out, speed


def export_weights(
    weights: Path, imgsz: int, formats: Sequence[str] = ("onnx", "openvino")
) -> dict[str, Path]:
    """Export ``weights`` to CPU runtime formats next to the weights file.

    ONNX: static shape, opset 17 (read by every onnxruntime since 1.13), simplified only if
    onnxslim is installed. Both exports are pinned to f32 (``quantize=32``) so their accuracy
    is the val figures'; OpenVINO may still pick bf16 at run time unless the runtime pins the
    inference precision (the inference side does).

    Returns:
        ``{format: exported path}`` (OpenVINO: the ``*_openvino_model`` folder).
    """
    prepare_offline()
    import importlib.util

    from ultralytics import YOLO  # type: ignore[attr-defined,unused-ignore]
    restore_pillow_open()  # undo Ultralytics' patch of PIL.Image.open

    out: dict[str, Path] = {}
    for fmt in formats:
        kwargs: dict[str, Any] = {
            "format": fmt,
            "imgsz": imgsz,
            "dynamic": False,
            "quantize": 32,
            "device": "cpu",
        }
        if fmt == "onnx":
            kwargs.update(opset=17, simplify=importlib.util.find_spec("onnxslim") is not None)
        elif fmt != "openvino":
            raise TrainingError(f"unsupported export format {fmt!r} (onnx, openvino)")
        with tracing_warnings_ignored():
            out[fmt] = Path(str(YOLO(str(weights)).export(**kwargs)))
        if fmt == "openvino":
            scrub_export_description(out[fmt] / "metadata.yaml")
    return out


def scrub_export_description(metadata: Path) -> None:
    """Name the training data as ``<dataset>/<set>/data.yaml`` in an export's metadata.yaml:
    Ultralytics writes the absolute path of this machine's dataset there, and the bundled
    model folders travel (no file under models/ names a path of a particular machine)."""
    if not metadata.is_file():
        return
    text = metadata.read_text(encoding="utf-8")
    scrubbed = re.sub(r"(?m)^(description: .* trained on )(?:/|~/)\S*?([^/\s]+/[^/\s]+)$",
                      r"\1<dataset>/\2", text)
    if scrubbed != text:
        metadata.write_text(scrubbed, encoding="utf-8")


# --------------------------------------------------------------------------- packaging

#: Output classes of the CPLID models: the insulator string marks an asset, a missing cap is a
#: defect. Severity 0-5; 3 = repair to be planned (a missing cap weakens the string's
#: insulation but the line stays in service).
CPLID_CARD_CLASSES: tuple[dict[str, Any], ...] = (
    {"id": 0, "name": "insulator", "role": "asset_marker", "severity": 0},
    {"id": 1, "name": "defect", "role": "defect", "severity": 3},
)
STAGE_IOU: dict[str, float] = {"main": 0.6, "insulator": 0.6, "defect": 0.5}


def _strip(weights: Path) -> None:
    """Drop optimizer state and keep fp16 EMA weights (a mid-run best.pt is ~5x larger)."""
    prepare_offline()
    from ultralytics.utils.torch_utils import strip_optimizer
    restore_pillow_open()  # undo Ultralytics' patch of PIL.Image.open

    strip_optimizer(str(weights))


def _trained_epochs(run_dir: Path) -> int:
    results = run_dir / "results.csv"
    if not results.is_file():
        return 0
    return max(0, len(results.read_text(encoding="utf-8").strip().splitlines()) - 1)


def _split_counts(data_root: Path) -> dict[str, int]:
    return {split: len(split_items(data_root, split)) for split in SPLITS}


def _base_of(run_args: dict[str, Any]) -> str:
    """What a run started from: the model .yaml, or the weights it continued (with sha256)."""
    start = Path(str(run_args.get("model", "")))
    if start.suffix == ".pt" and run_args.get("pretrained") is not False:
        digest = sha256_file(start) if start.is_file() else "?"
        return f"weights {start.name} (sha256 {digest[:16]})"
    return f"{BASE_MODEL}.yaml (from scratch, no pretrained weights)"


@dataclass(frozen=True)
class _KeptStage:
    stage: dict[str, Any]
    metrics: dict[str, Any]
    thresholds: dict[str, float]
    speed: dict[str, float]
    epochs: int
    hours: float | None
    base: str


def _reused_stage(old: ModelCard, stem: str, tmp: Path) -> _KeptStage:
    """Copy ``old``'s stage ``stem`` into the folder being built, re-exported, with its figures."""
    if stem not in old.stages:
        raise TrainingError(f"model {old.name!r} has no stage {stem!r} to reuse")
    source = old.stages[stem]
    shutil.copyfile(old.stage_path(stem, "torch"), tmp / f"{stem}.pt")
    exports = export_weights(tmp / f"{stem}.pt", source.imgsz)
    stage = source.model_dump(mode="json", exclude_none=True)
    stage.pop("openvino_int8", None)
    stage.update(weights=f"{stem}.pt", onnx=exports["onnx"].name,
                 openvino=exports["openvino"].name)
    metrics = {
        cls: m.model_dump(mode="json") for cls, m in old.metrics.stage_val.get(stem, {}).items()
    }
    thresholds = {cls: float(m.get("conf", source.conf)) for cls, m in metrics.items()}
    extra = old.training.model_extra or {}
    old_base = next(
        (part.split(": ", 1)[1] for part in str(extra.get("base_model", "")).split("; ")
         if part.startswith(f"{stem}: ")),
        "?",
    )
    speed = (old.speed.get("stage_val_torch_ms_per_image") or {}).get(stem, {})
    return _KeptStage(
        stage=stage,
        metrics=metrics,
        thresholds=thresholds,
        speed=dict(speed),
        epochs=int((extra.get("epochs") or {}).get(stem, 0)),
        hours=(extra.get("hours_per_stage") or {}).get(stem),
        base=f"kept from {old.name} version {old.version} (which started from {old_base})",
    )


def package_variant(
    variant: Variant,
    name: str,
    config: TrainConfig,
    *,
    models_dir: Path,
    tiles: TileOptions = TileOptions(),
    command: str = "",
    version: int = 1,
    reuse: Mapping[str, ModelCard] | None = None,
) -> Path:
    """Turn the finished runs of ``variant`` into ``models_dir/<name>/`` with a card.

    ``reuse`` maps a stage name to an already packaged model whose stage is taken as it is
    (weights re-exported, its Ultralytics val figures, epochs and origin copied from that
    card), so one stage can be retrained and repackaged without the other's run folder.

    Image size, tile size and val data are read from each run's ``args.yaml``; ``tiles`` only
    supplies the tiling options recorded in the card (overlap, jitter, ...).

    Copies each stage's ``best.pt`` (val-fitness selection), exports ONNX and OpenVINO (f32),
    runs Ultralytics' val per stage (figures and a per-class threshold chosen on val), hashes
    every weight file, and writes ``card.yaml`` and ``README.md``. The folder is built aside
    and renamed into place, so a failure leaves no half-written model.

    Returns:
        The model folder.
    """
    from vision.train.model_card import ModelCard, dump_card

    plans = stage_plans(variant, epochs=1, imgsz=None, tiles=tiles)
    final = models_dir / name
    tmp = models_dir / f".{name}.building"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        kept: dict[str, _KeptStage] = {
            plan.stage: (
                _reused_stage(reuse[plan.stage], plan.stage, tmp)
                if reuse and plan.stage in reuse
                else _trained_stage(plan, config, tmp)
            )
            for plan in plans
        }
        raw = _card_data(variant, name, version, config, tiles, command, kept, tmp)
        card = ModelCard.model_validate(raw)
        dump_card(card, tmp)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _trained_stage(plan: StagePlan, config: TrainConfig, tmp: Path) -> _KeptStage:
    """Copy the run's ``best.pt`` of ``plan`` into ``tmp``, export it and val it on its data."""
    run_dir = config.work_dir / "runs" / plan.run_name
    best = run_dir / "weights" / "best.pt"
    if not best.is_file():
        raise TrainingError(f"{plan.run_name} has no {best}: train it first")
    stem = plan.stage
    # The run's own args say what it was trained on, whatever this call was given.
    run_args = yaml.safe_load((run_dir / "args.yaml").read_text(encoding="utf-8"))
    run_imgsz, run_data = int(run_args["imgsz"]), Path(str(run_args["data"]))
    shutil.copyfile(best, tmp / f"{stem}.pt")
    _strip(tmp / f"{stem}.pt")
    exports = export_weights(tmp / f"{stem}.pt", run_imgsz)
    figures, speed = stage_val(tmp / f"{stem}.pt", run_data, run_imgsz, iou=STAGE_IOU[stem])
    thresholds = {cls: figures[cls]["conf"] for cls in plan.classes if cls in figures}
    conf = min((thresholds.get(c, 0.25) for c in plan.classes), default=0.25)
    if stem == "insulator":
        # The insulator stage only says where to cut tiles: a missed string hides its
        # defects, so it runs at half its output threshold to keep weak candidates.
        conf = conf / 2
    stage: dict[str, Any] = {
        "weights": f"{stem}.pt",
        "onnx": exports["onnx"].name,
        "openvino": exports["openvino"].name,
        "imgsz": run_imgsz,
        "conf": round(conf, 3),
        "iou": STAGE_IOU[stem],
        "classes": list(plan.classes),
    }
    if plan.tiles is not None:
        # Tiles are fed at native resolution: the tile side is the training imgsz.
        stage.update(tile_px=run_imgsz, tile_overlap=plan.tiles.overlap)
    else:
        # Whole photos: their size is the scale larger photos are sliced back to.
        native = _median_long_side(run_data)
        if native is not None:
            stage.update(native_px=native)
    return _KeptStage(
        stage=stage,
        metrics=figures,
        thresholds=thresholds,
        speed=speed,
        epochs=_trained_epochs(run_dir),
        hours=run_args.get("time"),
        base=_base_of(run_args),
    )


def _median_long_side(data_yaml: Path, *, sample: int = 200) -> int | None:
    """The median long side of (up to ``sample``) training photos of a ``data.yaml``."""
    from PIL import Image

    data = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    train = Path(str(data.get("train", "")))
    if not train.is_absolute():
        train = Path(str(data.get("path", data_yaml.parent))) / train
    if not train.is_dir():
        return None
    photos = sorted(p for p in train.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    sides = []
    for path in photos[:sample]:
        with Image.open(path) as img:  # the header only: no pixels decoded
            sides.append(max(img.size))
    return int(statistics.median(sides)) if sides else None


def _card_data(
    variant: Variant,
    name: str,
    version: int,
    config: TrainConfig,
    tiles: TileOptions,
    command: str,
    kept: Mapping[str, _KeptStage],
    tmp: Path,
) -> dict[str, Any]:
    """The raw ``card.yaml`` of a packaged variant from its stages, in stage order."""
    from vision.train.model_card import hash_weights

    stages = {stem: k.stage for stem, k in kept.items()}
    weight_names = [k.stage[key] for k in kept.values() for key in ("weights", "onnx", "openvino")]
    counts = _split_counts(config.data_root)
    return {
        "name": name,
        "version": version,
        "kind": variant,
        "classes": list(CPLID_CARD_CLASSES),
        "stages": stages,
        "conf_threshold": {cls: t for k in kept.values() for cls, t in k.thresholds.items()},
        "sha256": hash_weights(tmp, weight_names),
        "training": {
            "data": f"CPLID train ({counts['train']} images)",
            "selection": f"CPLID val ({counts['val']} images)",
            "seed": config.seed,
            "command": command,
            "base_model": "; ".join(f"{stem}: {k.base}" for stem, k in kept.items()),
            "epochs": {stem: k.epochs for stem, k in kept.items()},
            "hours_per_stage": {stem: k.hours for stem, k in kept.items()},
            "tiles": (
                {**asdict(tiles), "tile_px": stages["defect"]["tile_px"]}
                if variant == "cascade"
                else None
            ),
        },
        "metrics": {"val": {}, "stage_val": {stem: k.metrics for stem, k in kept.items()}},
        "speed": {
            "stage_val_torch_ms_per_image": {stem: k.speed for stem, k in kept.items()},
            "note": "Ultralytics val, torch, 1 thread, on the shared 2-core build machine "
            "while other jobs ran; pipeline figures come from benches/.",
        },
    }
