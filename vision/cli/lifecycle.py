"""``fieldops vision promote`` and ``fieldops vision retrain``: the model lifecycle.

``retrain`` turns the inspectors' retraining set (``fieldops inspections export-training-set``)
plus CPLID into a candidate model folder; ``promote`` judges a candidate against the current
model on a frozen evaluation set and records the promotion (:mod:`vision.train.promotion`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from vision.train.model_card import BACKEND_CHOICES, BACKEND_HELP, DEFAULT_MODELS_DIR

if TYPE_CHECKING:
    from vision.detect.inference import BackendChoice

app = typer.Typer(help="Promote and retrain models.", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


def _evaluator(backend: str, threads: int) -> Any:
    def evaluate(folder: Path, data_dir: Path) -> tuple[str, int, dict[str, Any]]:
        from vision.detect.inference import Detector
        from vision.train.evaluate import EVAL_SCORE_FLOOR, evaluate_folder

        detector = Detector(str(folder), backend=cast("BackendChoice", backend),
                            threads=threads, score_floor=EVAL_SCORE_FLOOR)
        typer.echo(f"evaluating {detector.card.name} v{detector.card.version} "
                   f"({detector.backend}) on {data_dir}", err=True)
        result = evaluate_folder(detector, data_dir, class_names=detector.class_names,
                                 conf_threshold=detector.thresholds)
        return detector.card.name, detector.card.version, result

    return evaluate


_ModelsDir = Annotated[
    Path, typer.Option(help="Models folder: where current.yaml records the current model.",
                       file_okay=False)
]


@app.command("promote")
def promote_command(
    name: Annotated[str, typer.Argument(help="Candidate model: a name under models/ or a folder.")],
    data: Annotated[
        Path,
        typer.Option("--data", help="Evaluation folder (images/ + annotations/, VOC); frozen in "
                     "its EVAL_SET.sha256 on first use.", exists=True, file_okay=False,
                     resolve_path=True),
    ],
    over: Annotated[
        str | None,
        typer.Option("--over", help="The current model (default: models/current.yaml's)."),
    ] = None,
    tolerance: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Largest drop allowed in any class's recall "
                            "or AP50.")
    ] = 0.02,
    by: Annotated[str | None, typer.Option(help="Who promotes (default: the OS user).")] = None,
    models_dir: _ModelsDir = DEFAULT_MODELS_DIR,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    threads: Annotated[int, typer.Option(min=1, max=64)] = 2,
) -> None:
    """Judge a candidate model against the current one on the same frozen evaluation set and
    record it as current, or refuse it (exit 1) when any class's recall or AP50 drops by more
    than the tolerance."""
    from vision.errors import VisionError
    from vision.train.model_card import resolve_model
    from vision.train.promotion import current_model_name, promote, render_table

    if backend not in BACKEND_CHOICES:
        raise _fail(f"unknown backend {backend!r}: use {', '.join(BACKEND_CHOICES)}")
    try:
        candidate = resolve_model(name, models_dir)
        current = resolve_model(over or current_model_name(models_dir), models_dir)
        if candidate.resolve() == current.resolve():
            raise _fail(f"{name} is already the model it would replace")
        verdict = promote(candidate, current, data, evaluate=_evaluator(backend, threads),
                          models_dir=models_dir, tolerance=tolerance, by=by)
    except (VisionError, OSError) as exc:
        raise _fail(str(exc)) from exc
    cand, cur = verdict.candidate, verdict.current
    fresh = " (frozen now)" if verdict.eval_set.created else ""
    typer.echo(f"evaluation set: {data} — {verdict.eval_set.photos} photos, sha256 "
               f"{verdict.eval_set.sha256[:16]}{fresh}\n")
    typer.echo(render_table(f"候选 / candidate: {cand.name} v{cand.version}", cand.table) + "\n")
    typer.echo(render_table(f"当前 / current: {cur.name} v{cur.version}", cur.table) + "\n")
    if not verdict.promoted:
        for short in verdict.shortfalls:
            typer.echo(f"  {short.line(verdict.tolerance)}", err=True)
        typer.secho(
            f"拒绝晋升：{cand.name} v{cand.version} 比当前模型 {cur.name} v{cur.version} 差，"
            f"超出容差 {verdict.tolerance} / refused: {cand.name} v{cand.version} is worse than "
            f"{cur.name} v{cur.version} beyond the tolerance {verdict.tolerance}",
            fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    typer.echo(f"已晋升：{cand.name} v{cand.version} 现为当前模型 / promoted: {cand.name} "
               f"v{cand.version} is now current (recorded in {models_dir / 'current.yaml'})")


@app.command("retrain")
def retrain_command(
    export: Annotated[
        Path, typer.Option("--export", help="The retraining set (fieldops inspections "
                           "export-training-set): train/ and val/ with images/ + annotations/.",
                           exists=True, file_okay=False, resolve_path=True),
    ],
    cplid: Annotated[
        Path, typer.Option("--cplid", help="CPLID-like folder: train/ and val/ with images/ + "
                           "annotations/.", exists=True, file_okay=False, resolve_path=True),
    ],
    name: Annotated[str, typer.Option(help="Candidate model name (folder under --models-dir).")],
    base: Annotated[
        str | None,
        typer.Option(help="Fine-tune from this model's stages (default: the current model).")
    ] = None,
    from_scratch: Annotated[
        bool, typer.Option(help="Train from yolo11n.yaml instead of the base model's weights.")
    ] = False,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per stage.")] = 60,
    hours: Annotated[float | None, typer.Option(min=0.01, help="Budget per stage.")] = None,
    models_dir: _ModelsDir = DEFAULT_MODELS_DIR,
    work_dir: Annotated[Path | None, typer.Option(help="Default ~/.cache/fieldops.")] = None,
    assemble_only: Annotated[
        bool, typer.Option(help="Only write the merged dataset and print where it is.")
    ] = False,
) -> None:
    """Retrain the cascade on CPLID plus the inspectors' retraining set, in one command: merge
    both into one dataset, train both stages (fine-tuned from the base model), package and
    evaluate a candidate model folder that `fieldops vision promote` can judge."""
    from vision.cli.train import VariantOpt, package
    from vision.errors import VisionError
    from vision.offline import cache_root
    from vision.train.retrain import RetrainPlan, assemble, train_stages

    root = (work_dir or cache_root()).expanduser().resolve()
    plan = RetrainPlan(export=export, cplid=cplid, name=name, models_dir=models_dir.resolve(),
                       work_dir=root, base=base, from_scratch=from_scratch, epochs=epochs,
                       hours=hours, command=" ".join(["fieldops", "vision", *sys.argv[2:]]))
    try:
        merged = assemble(plan)
        typer.echo(json.dumps(merged.summary(), ensure_ascii=False))
        if assemble_only:
            return
        version = train_stages(plan, merged, log=typer.echo)
    except (VisionError, OSError) as exc:
        raise _fail(str(exc)) from exc
    # packaging: weights, ONNX, OpenVINO f32 + int8, thresholds and figures on the merged val
    package(data=merged.root, name=name, variant=VariantOpt.cascade, tile_overlap=0.25,
            models_dir=plan.models_dir, work_dir=plan.root, seed=0, command=plan.command,
            version=version, compare=None, notes=None, evaluate=True, calibrate=True, int8=True,
            reuse_stage=None)
    folder = plan.models_dir / name
    typer.echo(f"candidate written: {folder}; judge it with: fieldops vision promote "
               f"{name} --data <frozen evaluation folder>")
