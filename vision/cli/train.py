"""``fieldops vision train`` and ``fieldops vision export``: the training side of the vision CLI.

``app`` is a typer sub-app; the ``fieldops`` command mounts it. Ultralytics is only imported
when a command runs (through :mod:`vision.train.training`), so ``fieldops --help`` stays fast.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vision.offline import cache_root

if TYPE_CHECKING:
    from vision.train.model_card import ModelCard
    from vision.train.training import StageName, Variant

app = typer.Typer(help="Train and export the drone-photo defect detectors.", no_args_is_help=True)


class VariantOpt(StrEnum):
    """Which pipeline to train."""

    single = "single"
    cascade = "cascade"


class StageOpt(StrEnum):
    """Which stages of the variant to train (``all`` runs them in order)."""

    all = "all"
    main = "main"
    insulator = "insulator"
    defect = "defect"


class FormatOpt(StrEnum):
    """CPU runtime formats ``export`` writes."""

    onnx = "onnx"
    openvino = "openvino"


_VARIANTS: dict[VariantOpt, Variant] = {VariantOpt.single: "single", VariantOpt.cascade: "cascade"}
_STAGES: dict[StageOpt, StageName] = {
    StageOpt.main: "main",
    StageOpt.insulator: "insulator",
    StageOpt.defect: "defect",
}


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


_TrainData = Annotated[
    Path,
    typer.Option(
        help="CPLID-like folder: train/ and val/ each holding images/ and annotations/ (VOC).",
        exists=True,
        file_okay=False,
        resolve_path=True,
    ),
]
_TrainVariant = Annotated[
    VariantOpt,
    typer.Option(
        help="single: one full-frame detector; cascade: insulator detector + defect on tiles."
    ),
]
_TrainImgsz = Annotated[
    int | None,
    typer.Option(min=32, help="Full-frame stage input size (default 640 single, 416 cascade)."),
]
_TrainWorkDir = Annotated[
    Path | None,
    typer.Option(help="Datasets, runs and logs go here (default ~/.cache/fieldops)."),
]
_TrainResume = Annotated[
    bool, typer.Option(help="Resume from runs/<name>/weights/last.pt when it exists.")
]
_TrainInitWeights = Annotated[
    Path | None,
    typer.Option(
        help="Start the stage from these weights (e.g. models/NAME/defect.pt) instead of "
        "the model .yaml; needs --stage for a cascade.",
        exists=True,
        dir_okay=False,
        resolve_path=True,
    ),
]
_TrainOptimizer = Annotated[
    str, typer.Option(help="Ultralytics optimizer: auto, SGD, AdamW, ...")
]
_TrainLr0 = Annotated[
    float | None, typer.Option(min=1e-6, max=1.0, help="Initial learning rate.")
]
_TrainWarmupEpochs = Annotated[
    float, typer.Option(min=0.0, help="Learning-rate warm-up epochs.")
]
_TrainHours = Annotated[
    float | None,
    typer.Option(
        min=0.01,
        help="Wall-clock budget per stage; epochs are re-fitted to it after each epoch.",
    ),
]


@app.command()
def train(
    data: _TrainData,
    variant: _TrainVariant = VariantOpt.cascade,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per stage.")] = 60,
    imgsz: _TrainImgsz = None,
    tile_px: Annotated[int, typer.Option(min=64, help="Defect tile side, native pixels.")] = 320,
    stage: Annotated[StageOpt, typer.Option(help="Train only this stage.")] = StageOpt.all,
    work_dir: _TrainWorkDir = None,
    resume: _TrainResume = True,
    seed: Annotated[int, typer.Option(help="Random seed (Ultralytics, tiling).")] = 0,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 16,
    init_weights: _TrainInitWeights = None,
    optimizer: _TrainOptimizer = "auto",
    lr0: _TrainLr0 = None,
    warmup_epochs: _TrainWarmupEpochs = 1.0,
    hours: _TrainHours = None,
) -> None:
    """Train a variant from yolo11n's model .yaml, selecting best.pt on val."""
    from vision.errors import VisionError
    from vision.train.training import TileOptions, TrainConfig, train_variant

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    valid_stages = {"single": {"main"}, "cascade": {"insulator", "defect"}}[variant.value]
    if stage is not StageOpt.all and stage.value not in valid_stages:
        raise _fail(f"variant {variant.value} has stages {sorted(valid_stages)}, not {stage.value}")
    if init_weights is not None and stage is StageOpt.all and len(valid_stages) > 1:
        raise _fail("--init-weights starts one stage: name it with --stage")
    config = TrainConfig(
        data_root=data,
        work_dir=(work_dir or cache_root()).expanduser().resolve(),
        seed=seed,
        batch=batch,
        resume=resume,
        hours=hours,
        init_weights=init_weights,
        optimizer=optimizer,
        lr0=lr0,
        warmup_epochs=warmup_epochs,
    )
    try:
        results = train_variant(
            _VARIANTS[variant],
            config,
            epochs=epochs,
            imgsz=imgsz,
            tiles=TileOptions(tile_px=tile_px),
            stages=None if stage is StageOpt.all else [_STAGES[stage]],
        )
    except VisionError as exc:
        raise _fail(str(exc)) from exc
    for result in results:
        typer.echo(f"{result.plan.run_name}: best {result.best}")


@app.command()
def export(
    weights: Annotated[
        Path, typer.Argument(help="A trained .pt file.", exists=True, dir_okay=False)
    ],
    imgsz: Annotated[int, typer.Option(min=32, help="Fixed input size of the export.")],
    fmt: Annotated[
        list[FormatOpt] | None, typer.Option("--format", help="Formats (repeatable).")
    ] = None,
) -> None:
    """Export weights to ONNX and/or OpenVINO (f32, static shape) next to the .pt file."""
    from vision.errors import VisionError
    from vision.train.training import export_weights

    formats = [f.value for f in (fmt or [FormatOpt.onnx, FormatOpt.openvino])]
    try:
        paths = export_weights(weights.resolve(), imgsz, formats)
    except (VisionError, RuntimeError, ValueError) as exc:  # Ultralytics raises plain ones
        raise _fail(f"export failed: {exc}") from exc
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


_PackageData = Annotated[
    Path,
    typer.Option(
        help="The CPLID-like folder the runs were trained on.",
        exists=True,
        file_okay=False,
        resolve_path=True,
    ),
]
_PackageTileOverlap = Annotated[
    float, typer.Option(min=0.0, max=0.9, help="Tile overlap the inference should use.")
]
_PackageModelsDir = Annotated[
    Path, typer.Option(help="Where model folders live.", file_okay=False)
]
_PackageWorkDir = Annotated[
    Path | None, typer.Option(help="Work dir of the training (default ~/.cache/fieldops).")
]
_PackageCompare = Annotated[
    list[Path] | None, typer.Option(help="Other packaged variants to report in README.md.")
]
_PackageNotes = Annotated[
    Path | None, typer.Option(help="Markdown file appended to README.md.", dir_okay=False)
]
_PackageEvaluate = Annotated[
    bool,
    typer.Option(help="Run the whole pipeline on the val split; record it in the card."),
]
_PackageCalibrate = Annotated[
    bool,
    typer.Option(
        help="Set each class's output threshold to the whole pipeline's max-F1 on val "
        "(with --evaluate; otherwise each stage's own val picks it)."
    ),
]
_PackageInt8 = Annotated[
    bool,
    typer.Option(
        help="Also quantize each stage's OpenVINO network to int8 (NNCF, calibrated on "
        "train photos) before the val evaluation; auto then runs it."
    ),
]
_PackageReuseStage = Annotated[
    list[str] | None,
    typer.Option(
        help="STAGE=MODEL: take this stage as packaged in MODEL (a name or folder) "
        "instead of from its run (repeatable)."
    ),
]


@app.command()
def package(
    data: _PackageData,
    name: Annotated[str, typer.Option(help="Model name (folder under --models-dir).")],
    variant: Annotated[VariantOpt, typer.Option(help="Which variant's runs to package.")] = (
        VariantOpt.cascade
    ),
    tile_overlap: _PackageTileOverlap = 0.25,
    models_dir: _PackageModelsDir = Path("models"),
    work_dir: _PackageWorkDir = None,
    seed: Annotated[int, typer.Option(help="Seed the runs were trained with.")] = 0,
    command: Annotated[str, typer.Option(help="Exact training command, for the card.")] = "",
    version: Annotated[int, typer.Option(min=1, help="Model version, for the card.")] = 1,
    compare: _PackageCompare = None,
    notes: _PackageNotes = None,
    evaluate: _PackageEvaluate = True,
    calibrate: _PackageCalibrate = True,
    int8: _PackageInt8 = True,
    reuse_stage: _PackageReuseStage = None,
) -> None:
    """Copy best weights into models/<name>/, export, validate, hash; write card and README."""
    from vision.errors import VisionError
    from vision.train.model_card import load_card, render_readme, resolve_model
    from vision.train.quantize import quantize_model
    from vision.train.training import TileOptions, TrainConfig, package_variant, split_items

    reuse: dict[str, ModelCard] = {}
    for item in reuse_stage or []:
        stage_name, sep, source = item.partition("=")
        if not sep or not stage_name or not source:
            raise _fail(f"--reuse-stage wants STAGE=MODEL, got {item!r}")
        try:
            reuse[stage_name] = load_card(resolve_model(source))
        except VisionError as exc:
            raise _fail(str(exc)) from exc

    config = TrainConfig(
        data_root=data,
        work_dir=(work_dir or cache_root()).expanduser().resolve(),
        seed=seed,
    )
    try:
        folder = package_variant(
            _VARIANTS[variant],
            name,
            config,
            models_dir=models_dir.resolve(),
            tiles=TileOptions(overlap=tile_overlap),
            command=command,
            version=version,
            reuse=reuse,
        )
        card = load_card(folder)
        if int8:
            typer.echo("quantizing to int8, calibrated on the train photos")
            card = quantize_model(folder, [image for image, _ in split_items(data, "train")])
        if evaluate:
            card = _record_val(card, folder, data / "val", calibrate=calibrate)
        others = [load_card(p, verify=False) for p in (compare or [])]
        extra = notes.read_text(encoding="utf-8") if notes else ""
    except (VisionError, OSError) as exc:
        raise _fail(str(exc)) from exc
    (folder / "README.md").write_text(render_readme(card, compared=others, notes=extra), "utf-8")
    typer.echo(f"packaged {folder}")


def _record_val(card: ModelCard, folder: Path, val_dir: Path, *, calibrate: bool) -> ModelCard:
    """Evaluate the packaged pipeline on ``val_dir`` and write the figures into its card.

    With ``calibrate`` the output thresholds become the pipeline's max-F1 thresholds on
    ``val_dir`` first, and the figures recorded are those at the new thresholds.
    """
    from vision.detect.inference import Detector
    from vision.train.evaluate import EVAL_SCORE_FLOOR, evaluate_folder
    from vision.train.model_card import dump_card, with_thresholds, with_val_metrics

    def run() -> dict[str, Any]:
        detector = Detector(str(folder), score_floor=EVAL_SCORE_FLOOR)
        typer.echo(f"evaluating the pipeline on {val_dir} ({detector.backend})")
        return evaluate_folder(
            detector, val_dir, class_names=detector.class_names,
            conf_threshold=detector.thresholds,
        )

    result = run()
    if calibrate:
        best = {
            name: row["max_f1"]["threshold"]
            for name, row in result["classes"].items()
            if row.get("max_f1")
        }
        card = with_thresholds(
            card, best,
            f"per class, the whole pipeline's max-F1 score threshold on {val_dir.name} "
            "(midpoint of the score gap), from `fieldops vision package --calibrate`",
        )
        dump_card(card, folder)
        typer.echo(f"output thresholds set on {val_dir.name}: {card.conf_threshold}")
        result = run()
    card = with_val_metrics(card, result["classes"])
    if any(stage.openvino_int8 for stage in card.stages.values()):
        # the f32 network at the same thresholds, to show what int8 costs
        f32 = Detector(str(folder), backend="openvino", score_floor=EVAL_SCORE_FLOOR)
        typer.echo(f"evaluating the f32 OpenVINO networks on {val_dir} for comparison")
        result = evaluate_folder(f32, val_dir, class_names=f32.class_names,
                                 conf_threshold=f32.thresholds)
        card = with_val_metrics(card, result["classes"], key="val_openvino_f32")
    dump_card(card, folder)
    return card


@app.command()
def quantize(
    model: Annotated[str, typer.Option(help="Model name under models/ or a model folder.")],
    data: Annotated[
        Path,
        typer.Option(
            help="CPLID-like folder; its train/images calibrate the quantization.",
            exists=True, file_okay=False, resolve_path=True,
        ),
    ],
    photos: Annotated[int, typer.Option(min=1, help="Train photos to calibrate on.")] = 300,
    samples: Annotated[int, typer.Option(min=1, help="Network inputs kept per stage.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the calibration sample.")] = 0,
    evaluate: Annotated[
        bool,
        typer.Option(help="Evaluate the int8 pipeline on val/ and record it in the card."),
    ] = True,
    calibrate: Annotated[
        bool, typer.Option(help="Re-choose the output thresholds on val (with --evaluate).")
    ] = False,
) -> None:
    """Quantize a packaged model's OpenVINO networks to int8, calibrated on train photos."""
    from vision.errors import VisionError
    from vision.train.model_card import resolve_model
    from vision.train.quantize import QuantizeOptions, quantize_model
    from vision.train.training import split_items

    try:
        folder = resolve_model(model)
        images = [image for image, _ in split_items(data, "train")]
        card = quantize_model(folder, images, QuantizeOptions(photos, samples, seed))
        if evaluate:
            card = _record_val(card, folder, data / "val", calibrate=calibrate)
    except (VisionError, OSError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"quantized {folder}: " + ", ".join(
        f"{name} → {stage.openvino_int8}" for name, stage in card.stages.items()))
