"""``fieldops vision run`` (the inspection batch) and ``fieldops vision locate`` (typer ``app``).

``run PHOTOS --ledger LEDGER --out DIR`` detects, geo-references, reconciles with the ledger
and writes records, GeoJSON layers, a CSV summary and an HTML report into DIR; rerunning the
same command after a crash resumes where it stopped. ``--engine ray`` runs the same batch on a
Ray cluster (``pip install fieldops[ray]``).

``check-ledger LEDGER...`` validates a ledger (duplicate ids, bad coordinates, assets far
from their line) and prints one JSON report.

``locate PHOTO`` prints where the camera was and where the image centre meets the ground::

    {"camera": {"lat": .., "lon": ..}, "center": {"lat": .., "lon": ..}, "uncertainty_m": ..}

Errors (bad input, unusable photo) print ``error: ...`` on stderr and exit with status 2.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from vision.cli.detect import CURRENT_MODEL_HELP
from vision.errors import GeoreferenceError, LedgerError
from vision.geo.camera import ErrorModel, camera_for, centre_for
from vision.geo.ledger import DEFAULT_MAX_LINE_DISTANCE_M, load_ledger
from vision.geo.metadata import read_metadata
from vision.geo.reconcile import ReconcileOptions
from vision.train.model_card import BACKEND_CHOICES, BACKEND_HELP

if TYPE_CHECKING:
    from vision.detect.inference import BackendChoice

app = typer.Typer(help="Inspection batches and geo-referencing.", no_args_is_help=True)


class Engine(StrEnum):
    """Where the batch runs."""

    local = "local"
    ray = "ray"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


_RunGroundElevation = Annotated[
    float | None, typer.Option(help="Terrain elevation in m (else RelativeAltitude).")
]
_RunFittingHeight = Annotated[
    float | None, typer.Option(help="Height of fittings in m (else median ledger Height).")
]
_RunAddress = Annotated[
    str | None, typer.Option(help="Ray cluster address (default: start a local one).")
]
_RunAllowExposedRay = Annotated[
    bool, typer.Option(help="Let a local Ray cluster listen beyond loopback.")
]


@app.command("run")
def run_command(
    photos: Annotated[Path, typer.Argument(help="Folder of drone photos (or one photo).")],
    ledger: Annotated[list[Path], typer.Option("--ledger", help="Ledger GeoJSON/CSV; repeatable.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder; rerun to resume.")],
    engine: Annotated[Engine, typer.Option(help="local, or ray for a Ray cluster.")] = (
        Engine.local
    ),
    model: Annotated[str | None, typer.Option(help=CURRENT_MODEL_HELP)] = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    threads: Annotated[int, typer.Option(min=1, max=64, help="Inference threads.")] = 2,
    batch_size: Annotated[int, typer.Option(
        min=1, max=64, help="Decoded photos held ready ahead of the detector, which takes the "
        "batch as one stream (--engine ray: photos per actor call).")] = 4,
    ground_elevation: _RunGroundElevation = None,
    fitting_height: _RunFittingHeight = None,
    photo_tolerance: Annotated[float, typer.Option(help="Photo to asset distance, m.")] = 25.0,
    detection_tolerance: Annotated[float, typer.Option(help="Defect to asset distance, m.")]
    = 10.0,
    position_tolerance: Annotated[float, typer.Option(help="Offset that is a mismatch, m.")]
    = 8.0,
    address: _RunAddress = None,
    actors: Annotated[int, typer.Option(min=1, help="Ray detector actors.")] = 1,
    allow_exposed_ray: _RunAllowExposedRay = False,
    batch_id: Annotated[str | None, typer.Option(help="Batch id (default: derived).")] = None,
    lang: Annotated[str, typer.Option(help="Language of report.html: zh-CN or en.")] = "zh-CN",
) -> None:
    """Detect, geo-reference and check drone photos against the line ledger."""
    from vision.cli.detect import current_model
    from vision.detect.inference import Detector
    from vision.detect.pipeline import BatchOptions, run_batch
    from vision.errors import VisionError
    from vision.geo.report import REPORT_LANGUAGES
    from vision.train.model_card import load_card, resolve_model

    if backend not in BACKEND_CHOICES:
        raise _fail(f"unknown backend {backend!r}: use {', '.join(BACKEND_CHOICES)}")
    if lang not in REPORT_LANGUAGES:
        raise _fail(f"unknown report language {lang!r}: use {', '.join(REPORT_LANGUAGES)}")
    chosen = cast("BackendChoice", backend)
    try:
        card = load_card(resolve_model(current_model(model)), verify=False)
    except VisionError as exc:
        raise _fail(str(exc)) from exc
    options = BatchOptions(
        batch_size=batch_size,
        ground_elevation_m=ground_elevation,
        fitting_height_m=fitting_height,
        reconcile=ReconcileOptions(photo_tolerance_m=photo_tolerance,
                                   detection_tolerance_m=detection_tolerance,
                                   position_tolerance_m=position_tolerance),
        progress=sys.stderr.isatty(),
        batch_id=batch_id,
        model_name=f"{card.name}@{card.version}",
        report_lang=lang,
    )
    try:
        if engine is Engine.ray:
            from vision.detect.distributed import run_batch_ray
            try:
                factory = partial(Detector, card, backend=chosen, threads=threads)
                summary = run_batch_ray(
                    photos, ledger, out, detector_factory=factory, classes=card.classes,
                    options=options, address=address, actors=actors,
                    allow_exposed=allow_exposed_ray,
                )
            except VisionError as exc:
                raise _fail(str(exc)) from exc
        else:
            detector = Detector(card, backend=chosen, threads=threads)
            summary = run_batch(photos, ledger, out, detector, card.classes, options=options)
    except (VisionError, OSError) as exc:
        raise _fail(str(exc)) from exc
    report = asdict(summary)
    report["out_dir"] = str(summary.out_dir)
    report["outputs"] = {k: str(v) for k, v in summary.outputs.items()}
    typer.echo(json.dumps(report, ensure_ascii=False))


@app.command("check-ledger")
def check_ledger_command(
    ledger: Annotated[list[Path], typer.Argument(help="Ledger GeoJSON/CSV files.")],
    max_line_distance: Annotated[
        float, typer.Option(help="Flag assets further than this from their line, m.")
    ] = DEFAULT_MAX_LINE_DISTANCE_M,
) -> None:
    """Validate a ledger before a flight: one JSON report with a row per problem."""
    try:
        loaded = load_ledger(*ledger, max_line_distance_m=max_line_distance)
    except LedgerError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(json.dumps({
        "assets": len(loaded.assets),
        "lines": len(loaded.lines),
        "derived_lines": sum(1 for ln in loaded.lines if ln.derived),
        "issues": [
            {"source": i.source, "row": i.row, "Identifier": i.identifier, "problem": i.code,
             "message": i.message}
            for i in loaded.issues
        ],
    }, ensure_ascii=False, indent=2))


@app.command("locate")
def locate_command(
    photo: Annotated[Path, typer.Argument(help="A drone photo with GPS and DJI XMP.")],
    ground_elevation: Annotated[
        float | None, typer.Option(help="Terrain elevation in m (else RelativeAltitude).")
    ] = None,
    gps_error: Annotated[float, typer.Option(help="GPS one-sigma error, m.")] = 3.0,
    attitude_error: Annotated[float, typer.Option(help="Gimbal one-sigma error, degrees.")]
    = 1.5,
) -> None:
    """Print the camera position and the ground point of the image centre as JSON."""
    if not photo.is_file():
        raise _fail(f"no such photo: {photo}")
    meta = read_metadata(photo)
    if not meta.readable:
        raise _fail("; ".join(meta.problems))
    errors = ErrorModel(gps_m=gps_error, attitude_deg=attitude_error)
    try:
        camera = camera_for(meta, ground_elevation_m=ground_elevation, errors=errors)
        centre = centre_for(meta, camera)
    except GeoreferenceError as exc:
        raise _fail(f"{photo.name}: {exc}") from exc
    typer.echo(json.dumps({
        "camera": {"lat": round(camera.pose.lat, 7), "lon": round(camera.pose.lon, 7)},
        "center": {"lat": round(centre.lat, 7), "lon": round(centre.lon, 7)},
        "uncertainty_m": round(centre.uncertainty_m, 2),
    }))


if __name__ == "__main__":  # pragma: no cover
    app()
