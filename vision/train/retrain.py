"""Retraining: CPLID plus the inspectors' retraining set into one candidate model folder.

``fieldops vision retrain --export EXPORT --cplid CPLID --name NAME`` (:mod:`vision.cli.lifecycle`)
runs, in order:

1. :func:`assemble` — one merged dataset under ``<work dir>/retrain/NAME/data``: ``train/``
   and ``val/`` each with ``images/`` (hard links to the original photos; copies across file
   systems) and ``annotations/`` (the Pascal VOC files, copied), photos renamed
   ``cplid__<stem>`` and ``field__<stem>`` so names never collide. The export's own split is
   kept (it splits by a hash of the photo id, stable as photos are added), and so is CPLID's.
   A photo without an annotation stays a negative (no object), as in both sources.
   ``sources.json`` records the counts per split and source.
2. Both cascade stages are trained one after the other on the merged set, each fine-tuned from
   the base model's stage (the current model unless ``--base``; ``--from-scratch`` starts from
   yolo11n.yaml), at the base model's input and tile sizes.
3. ``fieldops vision package`` writes ``models/NAME`` (version = the base's + 1): weights, ONNX,
   OpenVINO f32 and int8, thresholds calibrated on the merged val split, figures in card.yaml.

The candidate is not used until ``fieldops vision promote NAME`` accepts it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vision.detect.images import IMAGE_SUFFIXES
from vision.errors import DatasetLayoutError

SPLITS = ("train", "val")
SOURCES = ("cplid", "field")


@dataclass(frozen=True)
class RetrainPlan:
    """What ``fieldops vision retrain`` was asked to do."""

    export: Path
    cplid: Path
    name: str
    models_dir: Path
    work_dir: Path
    base: str | None = None
    from_scratch: bool = False
    epochs: int = 60
    hours: float | None = None
    command: str = ""

    @property
    def root(self) -> Path:
        """This retraining's own folder: merged data and training runs."""
        return self.work_dir / "retrain" / self.name


@dataclass(frozen=True)
class MergedDataset:
    """The merged dataset: its folder and how many photos each source gave each split."""

    root: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts and folder, as printed by the command and written to ``sources.json``."""
        return {"data": str(self.root), "photos": self.counts}


def _split_files(source: Path, split: str) -> list[tuple[Path, Path | None]]:
    images = source / split / "images"
    if not images.is_dir():
        raise DatasetLayoutError(f"{images} does not exist: expected {split}/images/ in {source}")
    found = []
    for image in sorted(images.iterdir()):
        if image.is_file() and image.suffix.lower() in IMAGE_SUFFIXES:
            ann = source / split / "annotations" / f"{image.stem}.xml"
            found.append((image.resolve(), ann if ann.is_file() else None))
    return found


def _link(source: Path, target: Path) -> None:
    """A hard link (no copy, and unlike a symlink it keeps its own name when the training
    resolves paths); a copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def assemble(plan: RetrainPlan) -> MergedDataset:
    """Write the merged dataset (see the module docstring), built aside and renamed into place.

    Raises:
        DatasetLayoutError: a source lacks ``train/images`` or ``val/images``, or the merged
            train split is empty.
    """
    final = plan.root / "data"
    tmp = plan.root / ".data.building"
    shutil.rmtree(tmp, ignore_errors=True)
    counts: dict[str, dict[str, int]] = {split: {} for split in SPLITS}
    try:
        for split in SPLITS:
            (tmp / split / "images").mkdir(parents=True)
            (tmp / split / "annotations").mkdir(parents=True)
            for tag, source in zip(SOURCES, (plan.cplid, plan.export), strict=True):
                items = _split_files(source, split)
                for image, ann in items:
                    stem = f"{tag}__{image.stem}"
                    _link(image, tmp / split / "images" / f"{stem}{image.suffix.lower()}")
                    if ann is not None:
                        shutil.copyfile(ann, tmp / split / "annotations" / f"{stem}.xml")
                counts[split][tag] = len(items)
        if not sum(counts["train"].values()):
            raise DatasetLayoutError("no training photos in either source")
        merged = MergedDataset(final, counts)
        (tmp / "sources.json").write_text(json.dumps({
            **merged.summary(), "cplid": str(plan.cplid), "export": str(plan.export),
        }, indent=2, ensure_ascii=False), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return merged


def train_stages(plan: RetrainPlan, merged: MergedDataset, *, log: Callable[[str], Any]) -> int:
    """Train both cascade stages on ``merged`` (fine-tuned from the base model unless
    ``from_scratch``); returns the candidate's version (the base's + 1). The runs land in
    ``plan.root``, where ``fieldops vision package --work-dir`` finds them.

    Needs the vision extra (Ultralytics); hours on a CPU (the bundled model's budget was 1.9 h
    per stage on 2 cores).
    """
    from vision.train.model_card import load_card, resolve_model
    from vision.train.promotion import current_model_name
    from vision.train.training import TileOptions, TrainConfig, train_variant

    base = load_card(resolve_model(plan.base or current_model_name(plan.models_dir),
                                   plan.models_dir))
    tiles = TileOptions(tile_px=base.stages["defect"].tile_px or TileOptions().tile_px)
    for stage in ("insulator", "defect"):
        spec = base.stages[stage]
        init = None if plan.from_scratch else base.directory / spec.weights
        log(f"training {stage} on {merged.root}"
            + ("" if init is None else f", fine-tuned from {init}"))
        config = TrainConfig(data_root=merged.root, work_dir=plan.root, hours=plan.hours,
                             init_weights=init)
        train_variant("cascade", config, epochs=plan.epochs,
                      imgsz=base.stages["insulator"].imgsz, tiles=tiles, stages=[stage])
    return base.version + 1
