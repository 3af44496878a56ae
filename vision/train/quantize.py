"""Post-training int8 quantization of a packaged model's OpenVINO networks (NNCF).

The f32 OpenVINO IR of each stage is quantized with NNCF's post-training quantization,
calibrated on the inputs the pipeline itself feeds that stage on *train* photos (letterboxed
frames for a full-frame stage, the native-resolution tiles cut along detected insulators for
the defect stage), never on val. The detection head's last convolutions (box regression and
class logits) and the box decoding after them stay in f32: quantizing them is what costs a
YOLO head its localisation (AP50-95) and its score calibration. The result is written beside
the f32 IR as ``<stage>_int8_openvino_model/`` and named in the card (``openvino_int8``), so
the ``openvino-int8`` backend (chosen by ``auto``) runs it and ``openvino`` still runs f32.

This is the only module that imports NNCF; it is a packaging step, not needed at run time.

Example:
    >>> card = quantize_model(Path("models/cplid-cascade"),
    ...                       sorted(Path("cplid/train/images").glob("*.jpg")))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vision.detect.images import stream_images
from vision.detect.inference import Detector, FloatArray, Pending, Runner, to_blob
from vision.errors import QuantizeError
from vision.offline import prepare_offline
from vision.train.model_card import ModelCard, dump_card, hash_weights, load_card, weight_files

HEAD_TYPES: tuple[str, ...] = ("Sigmoid",)


def head_patterns(op_names: Iterable[str]) -> list[str]:
    r"""Node-name patterns of an Ultralytics Detect head to leave in f32.

    The head is the network's last module, ``model.<N>`` with the largest N. Kept in f32: the
    box decoding done directly in the head (anchors, DFL, concat, sigmoid), and the final
    convolutions of both branches (``cv2.<level>.2`` boxes, ``cv3.<level>.2`` class logits).
    Both namings are covered: a torch-traced IR (``__module.model.23.cv3.0.2/aten::...``) and
    one converted from ONNX (``/model.23/cv3.0/cv3.0.2/Conv``).

    Example:
        >>> head_patterns(["/model.0/conv/Conv", "/model.23/Add"])[0]
        '.*model\\.23/aten::.*'
    """
    indices = [int(m.group(1)) for name in op_names
               if (m := re.search(r"model\.(\d+)[./]", name))]
    if not indices:
        raise QuantizeError("the network's op names do not look like an Ultralytics model")
    n = max(indices)
    return [
        rf".*model\.{n}/aten::.*",  # torch-traced: ops of the head module itself
        rf"/model\.{n}/[A-Z][^/]*",  # converted from ONNX: the same
        rf".*model\.{n}[./]dfl.*",
        rf".*model\.{n}(\.cv[23]\.\d+\.2|/cv[23]\.\d+/cv[23]\.\d+\.2)/.*",
    ]


@dataclass(frozen=True, slots=True)
class QuantizeOptions:
    """How the calibration set is drawn.

    Attributes:
        max_photos: train photos run through the f32 pipeline to collect stage inputs.
        samples: network inputs kept per stage (a seeded uniform sample of those seen).
        seed: seed of the sample.
    """

    max_photos: int = 300
    samples: int = 300
    seed: int = 0


class _Reservoir:
    """A seeded uniform sample of at most ``size`` network inputs, kept as uint8 (4x smaller)."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.items: list[npt.NDArray[np.uint8]] = []
        self.seen = 0

    def add(self, blob: npt.NDArray[np.uint8]) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(blob.copy())
            return
        j = int(self.rng.integers(0, self.seen))
        if j < self.size:
            self.items[j] = blob.copy()


def _to_float(canvas: npt.NDArray[np.uint8]) -> FloatArray:
    # the f32 IR's own input: what the runner's preprocessing makes of the uint8 canvas
    return to_blob(canvas[None])


class _Recorder:
    """Stands in for a stage's runner: records every image it is fed, then runs it."""

    def __init__(self, runner: Runner, reservoir: _Reservoir) -> None:
        self.runner = runner
        self.backend = runner.backend
        self.reservoir = reservoir

    def __call__(self, batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return self.start(batch).result()

    def start(self, batch: npt.NDArray[np.uint8]) -> Pending:
        for i in range(batch.shape[0]):
            self.reservoir.add(batch[i])
        return self.runner.start(batch)


def collect_stage_inputs(
    detector: Detector, photos: Sequence[Path], options: QuantizeOptions = QuantizeOptions()
) -> dict[str, list[npt.NDArray[np.uint8]]]:
    """Run ``detector`` over ``photos`` and sample the inputs each stage's network received.

    Returns:
        Stage name → up to ``options.samples`` letterboxed uint8 BGR canvases (H, W, 3).
    """
    rng = np.random.default_rng(options.seed)
    reservoirs = {name: _Reservoir(options.samples, rng) for name in detector.stages}
    originals = {name: stage.runner for name, stage in detector.stages.items()}
    try:
        for name, stage in detector.stages.items():
            stage.runner = _Recorder(originals[name], reservoirs[name])
        with stream_images(list(photos)[: options.max_photos]) as stream:
            for record in stream:
                if record.ok and record.image is not None:
                    detector([record.image])
    finally:
        for name, stage in detector.stages.items():
            stage.runner = originals[name]
    return {name: r.items for name, r in reservoirs.items()}


def quantize_model(
    folder: Path, photos: Sequence[Path], options: QuantizeOptions = QuantizeOptions()
) -> ModelCard:
    """Quantize every stage of the model in ``folder`` to int8 and record it in its card.

    Args:
        folder: a packaged model folder with an f32 OpenVINO export per stage.
        photos: calibration photos (train split; never the photos thresholds are chosen on).
        options: calibration sample sizes and seed.

    Returns:
        The updated card (also written to ``folder/card.yaml``). A failure leaves the folder
        as it was: the new networks are written aside and moved in before the card.

    Raises:
        QuantizeError: NNCF is not installed, the model has no OpenVINO export, or no photo
            gave the stage any input.
    """
    prepare_offline()
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise QuantizeError(f"int8 quantization needs nncf and openvino: {exc}") from exc
    nncf.set_log_level(logging.WARNING)  # its INFO lines list every node it leaves in f32
    card = load_card(folder)
    if any(stage.openvino is None for stage in card.stages.values()):
        raise QuantizeError(f"model {card.name!r} has no f32 OpenVINO export to quantize")
    detector = Detector(card, backend="openvino")
    inputs = collect_stage_inputs(detector, photos, options)
    core = ov.Core()
    built: dict[str, Path] = {}
    try:
        for name, stage in card.stages.items():
            quantized = _quantize_network(nncf, ov, core, card, name, stage.imgsz, inputs[name])
            aside = folder / f".{name}_int8_openvino_model.building"
            shutil.rmtree(aside, ignore_errors=True)
            aside.mkdir()
            built[name] = aside
            ov.save_model(quantized, str(aside / f"{name}.xml"), compress_to_fp16=False)
    except QuantizeError:
        _remove(built.values())
        raise
    except Exception as exc:
        _remove(built.values())
        raise QuantizeError(f"quantization of {card.name!r} failed: {exc}") from exc
    info: dict[str, Any] = {
        "method": "NNCF post-training quantization (preset mixed, fast bias correction)",
        "nncf": str(nncf.__version__),
        "openvino": str(ov.__version__),
        "calibration": (
            f"{min(len(photos), options.max_photos)} train photos through the f32 pipeline; "
            f"{options.samples} network inputs per stage (seed {options.seed})"
        ),
        "kept_f32": "detection head output convolutions, DFL and box decoding",
    }
    _move_in(card, folder, built, info)
    return load_card(folder)


def _quantize_network(
    nncf: Any, ov: Any, core: Any, card: ModelCard, name: str, imgsz: int,
    samples: Sequence[npt.NDArray[np.uint8]],
) -> Any:
    """NNCF post-training quantization of stage ``name``'s f32 OpenVINO network."""
    if not samples:
        raise QuantizeError(f"the calibration photos gave stage {name!r} no input")
    xml = next(iter(sorted(card.stage_path(name, "openvino").glob("*.xml"))), None)
    if xml is None:
        raise QuantizeError(f"no OpenVINO .xml for stage {name!r}")
    model = core.read_model(str(xml))
    model.reshape({model.inputs[0]: ov.PartialShape([1, 3, imgsz, imgsz])})
    return nncf.quantize(
        model,
        nncf.Dataset(samples, _to_float),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(samples),
        ignored_scope=nncf.IgnoredScope(
            patterns=head_patterns(op.get_friendly_name() for op in model.get_ops()),
            types=list(HEAD_TYPES), validate=False,
        ),
    )


def _move_in(
    card: ModelCard, folder: Path, built: Mapping[str, Path], info: dict[str, Any]
) -> None:
    """Move the int8 networks built aside into place and write the card that names them."""
    stages = dict(card.stages)
    for name, aside in built.items():
        final = folder / f"{name}_int8_openvino_model"
        shutil.rmtree(final, ignore_errors=True)
        aside.rename(final)
        stages[name] = stages[name].model_copy(update={"openvino_int8": final.name})
    names = [n for s in stages.values() for n in (s.weights, s.onnx, s.openvino, s.openvino_int8)
             if n]
    sha = {k: v for k, v in card.sha256.items() if k in set(weight_files(folder, names))}
    sha.update(hash_weights(folder, [f"{n}_int8_openvino_model" for n in built]))
    training = card.training.model_copy(update={"quantization": info})
    updated = card.model_copy(update={"stages": stages, "sha256": sha, "training": training})
    updated._directory = card._directory
    dump_card(updated, folder)


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


__all__ = [
    "QuantizeOptions",
    "collect_stage_inputs",
    "head_patterns",
    "quantize_model",
]
