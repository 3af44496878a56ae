"""CPU inference: the ``Detector`` callable over a model card, with three runtime backends.

This is the only inference module that imports Ultralytics, ONNX Runtime or OpenVINO (the
training module is the other edge). Everything else in ``vision`` sees numpy and
:class:`~vision.detect.detections.Detections`.

Pipeline per batch of BGR photos::

    letterbox (cv2, uint8) → backend forward → decode + NMS (numpy) → un-letterbox
    cascade: insulator stage on the whole photo → square native-resolution tiles along each
             insulator (``vision.detect.tiling.tiles_along``, the same tiles training cut) → defect
             stage on the tiles → boxes shifted back to the photo → merge + NMS

The cascade is overlapped, not staged: the first stage runs on chunks of four photos, the next
chunk started before this one's boxes are read; each photo's tiles are cut as soon as its
insulators are known, and every group of four tiles is started at once (OpenVINO runs the
requests in its own threads). Only tiles with a score over the threshold are decoded. So the
two cores stay busy with forward passes while Python letterboxes, cuts and decodes.

Backends (``auto`` picks the fastest one the model folder and the installed packages allow):

- ``openvino-int8``: the OpenVINO IR quantized to int8 by ``vision.train.quantize`` (post-training,
  calibrated on train photos; the detection head's output convolutions and box decoding kept
  in f32), run like ``openvino``. About 2.2x less compute per network call than f32 on a CPU
  with AVX-512 VNNI; its val figures are the card's ``metrics.val``.
- ``openvino``: f32 inference precision pinned (OpenVINO would pick bf16 on CPUs that have it,
  which changes scores), ``threads`` single-thread streams fed by async requests; telemetry
  off.
- ``onnx``: ONNX Runtime CPU provider, ``threads`` intra-op threads; telemetry off.
- ``torch``: the Ultralytics checkpoint's fused ``nn.Module`` with ``threads`` torch threads.

All three share the same pre- and post-processing, so they give the same boxes up to float
rounding. Reference speeds per 1152x864 photo, 2-core machine, yolo11n at 640: Ultralytics'
default ``predict`` 62 ms, torch 2 threads 36 ms, ONNX Runtime 29 ms, OpenVINO 18 ms.

Error tree::

    InferenceError(RuntimeError)   a backend cannot be used (missing package/export, bad file)
    vision.train.model_card.ModelCardError / ModelIntegrityError   bad card, wrong sha256
"""

from __future__ import annotations

import atexit
import itertools
import threading
import weakref
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar, cast

import cv2
import numpy as np
import numpy.typing as npt

from vision.detect.allocator import keep_freed_memory
from vision.detect.detections import Detections, nms_indices
from vision.detect.tiling import Tile, crop, slice_plan, stride_tiles, tiles_along
from vision.errors import InferenceError, ModelCardError
from vision.offline import prepare_offline, restore_pillow_open, tracing_warnings_ignored
from vision.train.model_card import (
    Backend,
    ModelCard,
    Stage,
    load_card,
    resolve_model,
    verify_files,
    weight_files,
)

BackendChoice = Literal["auto", "torch", "onnx", "openvino", "openvino-int8"]
#: fastest first (see the module docstring)
BACKENDS: tuple[Backend, ...] = ("openvino-int8", "openvino", "onnx", "torch")
DEFAULT_MODEL = "cplid-cascade"
DEFAULT_THREADS = 2
REQUEST_BATCH = 4  # images per OpenVINO infer request (see OpenVinoRunner)
STREAM_LOOKAHEAD = 4  # photos tiled after one before its result is assembled (Detector.stream)
PAD_VALUE = 114  # grey padding, as Ultralytics letterboxes during training
MAX_DET = 300
MAX_NMS_CANDIDATES = 30_000
Image: TypeAlias = npt.NDArray[np.uint8]
FloatArray: TypeAlias = npt.NDArray[np.float32]
T = TypeVar("T")


# ---------------------------------------------------------------------- pre/post-processing
@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was fitted into the square network input (to undo it on the boxes)."""

    gain: float
    pad_x: float
    pad_y: float

    def to_image(self, xyxy: FloatArray) -> FloatArray:
        """Map boxes from network-input pixels back to the original image pixels."""
        out = xyxy.copy()
        out[:, [0, 2]] -= self.pad_x
        out[:, [1, 3]] -= self.pad_y
        out /= self.gain
        return out


def letterbox(
    image: Image, size: int, out: Image | None = None
) -> tuple[Image, Letterbox]:
    """Resize keeping the aspect ratio and pad to a ``size``x``size`` uint8 BGR canvas.

    Matches Ultralytics' ``LetterBox(auto=False, center=True)`` so exported models see the
    inputs they were trained on. The canvas stays uint8 BGR (H, W, C): the runner turns it
    into the network's float RGB (C, H, W) input — inside the compiled OpenVINO model (its
    preprocessing, run in the inference threads), or with :func:`to_blob` for ONNX Runtime
    and torch.

    Args:
        image: BGR uint8 (H, W, 3).
        size: square network input side.
        out: optional (size, size, 3) uint8 array to write into (a slot of a batch).

    Returns:
        The (size, size, 3) uint8 canvas and the :class:`Letterbox` to undo it.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InferenceError(
            f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}"
        )
    h, w = image.shape[:2]
    gain = min(size / h, size / w)
    new_w, new_h = round(w * gain), round(h * gain)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    top, left = round(dh - 0.1), round(dw - 0.1)
    canvas = np.empty((size, size, 3), dtype=np.uint8) if out is None else out
    # grey padding around the photo, then the photo resized straight into its place
    canvas[:top] = PAD_VALUE
    canvas[top + new_h:] = PAD_VALUE
    canvas[top:top + new_h, :left] = PAD_VALUE
    canvas[top:top + new_h, left + new_w:] = PAD_VALUE
    inner = canvas[top:top + new_h, left:left + new_w]
    if (new_w, new_h) != (w, h):
        cv2.resize(image, (new_w, new_h), dst=inner, interpolation=cv2.INTER_LINEAR)
    else:
        inner[...] = image
    return canvas, Letterbox(gain=gain, pad_x=float(left), pad_y=float(top))


def to_blob(batch: Image) -> FloatArray:
    """uint8 BGR (B, H, W, 3) canvases → the networks' float32 RGB (B, 3, H, W) in [0, 1]."""
    if batch.shape[0] == 0:
        return np.empty((0, 3, *batch.shape[1:3]), dtype=np.float32)
    # one pass in C: BGR→RGB, HWC→CHW, uint8→float32 /255, no temporaries
    return cast(FloatArray, cv2.dnn.blobFromImages(list(batch), scalefactor=1 / 255.0,
                                                   swapRB=True))


def decode_predictions(
    raw: npt.NDArray[np.floating[Any]],
    *,
    conf: float,
    iou: float,
    max_det: int = MAX_DET,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Turn one image's raw YOLO output (4 + nc, anchors) into NMS-ed boxes.

    Args:
        raw: rows cx, cy, w, h, then one score per class, one column per anchor.
        conf: minimum class score kept.
        iou: class-aware NMS IoU threshold.
        max_det: most boxes kept.

    Returns:
        ``(xyxy (K, 4), scores (K,), class_ids (K,))`` in network-input pixels, best first.
    """
    pred = np.asarray(raw, dtype=np.float32)
    scores_all = pred[4:]
    class_ids = scores_all.argmax(axis=0)
    scores = np.take_along_axis(scores_all, class_ids[None, :], axis=0)[0]
    keep = np.flatnonzero(scores >= conf)
    if keep.size > MAX_NMS_CANDIDATES:
        keep = keep[np.argsort(-scores[keep])[:MAX_NMS_CANDIDATES]]
    cx, cy, w, h = pred[:4, keep]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    scores, class_ids = scores[keep], class_ids[keep].astype(np.int64)
    order = nms_indices(xyxy, scores, iou, class_ids, max_det=max_det)
    return xyxy[order], scores[order].astype(np.float32), class_ids[order]


# ---------------------------------------------------------------------- backends
class Pending(Protocol):
    """Forward passes started by :meth:`Runner.start`; :meth:`result` waits for their output."""

    def result(self) -> npt.NDArray[np.float32]: ...


class Runner(Protocol):
    """A loaded network: uint8 BGR (B, S, S, 3) letterboxed canvases → raw (B, 4 + nc, anchors).

    ``runner(batch)`` returns the output; ``runner.start(batch)`` starts the forward passes and
    returns at once where the backend runs them in its own threads (OpenVINO), so the caller
    can prepare the next inputs meanwhile.
    """

    backend: Backend

    def __call__(self, batch: Image) -> npt.NDArray[np.float32]: ...

    def start(self, batch: Image) -> Pending: ...


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A result already computed (a backend without asynchronous requests, a blocking stage)."""

    value: T

    def result(self) -> T:
        return self.value


class TorchRunner:
    """The Ultralytics checkpoint's fused module, run with a fixed number of torch threads."""

    backend: Backend = "torch"

    def __init__(self, weights: Path, *, threads: int = DEFAULT_THREADS) -> None:
        prepare_offline()
        import torch
        from ultralytics.nn import tasks
        restore_pillow_open()  # undo Ultralytics' patch of PIL.Image.open

        self._torch = torch
        self.threads = threads
        try:
            # Ultralytics is untyped: everything it returns is Any to mypy
            model, _ = cast(Any, tasks).load_checkpoint(str(weights), device="cpu", fuse=True)
        except Exception as exc:
            raise InferenceError(f"cannot load PyTorch weights {weights}: {exc}") from exc
        self.model = model.float().eval()

    def __call__(self, batch: Image) -> npt.NDArray[np.float32]:
        torch = self._torch
        # Ultralytics' select_device() resets the process-wide thread count to cpu_count - 1
        # (one thread on a 2-core machine) whenever any YOLO object predicts; set ours back.
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            out = self.model(torch.from_numpy(to_blob(batch)))
        if isinstance(out, (list, tuple)):
            out = out[0]
        return cast(npt.NDArray[np.float32], out.numpy())

    def start(self, batch: Image) -> Pending:
        return Done(self(batch))


class OnnxRunner:
    """ONNX Runtime on the CPU execution provider."""

    backend: Backend = "onnx"

    def __init__(self, model_path: Path, *, threads: int = DEFAULT_THREADS) -> None:
        prepare_offline()
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise InferenceError("onnxruntime is not installed") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise InferenceError(f"cannot load ONNX model {model_path}: {exc}") from exc
        model_input = self.session.get_inputs()[0]
        self.input_name: str = model_input.name
        batch_dim = model_input.shape[0]
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) else None

    def __call__(self, batch: Image) -> npt.NDArray[np.float32]:
        if self.fixed_batch == 1 and batch.shape[0] != 1:
            # an export with a static batch of 1: run the images one by one
            return np.concatenate([self(batch[i:i + 1]) for i in range(batch.shape[0])])
        out = self.session.run(None, {self.input_name: to_blob(batch)})
        return cast(npt.NDArray[np.float32], out[0])

    def start(self, batch: Image) -> Pending:
        return Done(self(batch))


@dataclass(frozen=True, slots=True)
class _Requests:
    """Infer requests of one :meth:`OpenVinoRunner.start`, by the keys their outputs land at."""

    runner: OpenVinoRunner
    keys: tuple[int, ...]

    def result(self) -> npt.NDArray[np.float32]:
        return np.concatenate([self.runner.take(key) for key in self.keys])


class OpenVinoRunner:
    """OpenVINO on the CPU, f32 precision pinned, one stream per thread.

    The same runner serves the int8 IR (backend ``openvino-int8``): its quantized layers run
    in int8, the layers left out of quantization in f32 (never bf16).

    The compiled model takes the letterboxed uint8 BGR canvases as they are: OpenVINO's
    preprocessing (part of the compiled model, run in its inference threads) converts them to
    the float RGB CHW input in [0, 1] the network was exported with — no float copy of a
    batch is made in Python, and the conversion is fused into the first layer.

    A batch is cut into infer requests of ``REQUEST_BATCH`` images (the rest one by one),
    spread over ``threads`` streams of one thread each (OpenVINO's throughput mode). Small
    inputs (a 256-320 px tile, a 320-416 letterbox) parallelise poorly inside one
    convolution, so two requests side by side keep two cores busier than one request on two
    threads; four images per request reuse each layer's weights while they are in cache
    (about 15 % less time per image for the int8 networks). :meth:`start` returns as soon as
    the requests are queued (it blocks only while every request is busy): the cascade cuts
    the next tiles while the last ones run. Called directly, a batch too small to give every
    stream a group of four goes one by one, so that both cores work on it.
    """

    def __init__(
        self, model_dir: Path, *, imgsz: int, threads: int = DEFAULT_THREADS,
        backend: Backend = "openvino",
    ) -> None:
        prepare_offline()
        self.backend: Backend = backend
        try:
            import openvino as ov
        except ImportError as exc:
            raise InferenceError("openvino is not installed") from exc
        xml: Path | None = model_dir
        if model_dir.suffix != ".xml":
            xml = next(iter(sorted(model_dir.glob("*.xml"))), None)
        if xml is None or not xml.is_file():
            raise InferenceError(f"no OpenVINO .xml model in {model_dir}")
        self.streams = threads
        self._queues: dict[int, Any] = {}
        try:
            core = ov.Core()
            for size in (1, REQUEST_BATCH):
                compiled = _compile_uint8_input(ov, core, xml, size, imgsz, threads)
                queue = ov.AsyncInferQueue(compiled, threads)
                queue.set_callback(self._collect)
                self._queues[size] = queue
        except Exception as exc:
            raise InferenceError(f"cannot load OpenVINO model {xml}: {exc}") from exc
        self._outputs: dict[int, npt.NDArray[np.float32]] = {}
        self._landed = threading.Condition()
        self._keys = itertools.count()
        _LIVE_RUNNERS.add(self)

    def close(self) -> None:
        """End the requests in flight and free the infer queues (the runner is unusable after)."""
        for queue in self._queues.values():
            queue.wait_all()
        self._queues = {}

    def _collect(self, request: Any, key: int) -> None:
        # an OpenVINO thread; copy: the request's output memory is reused by its next run
        out = request.get_output_tensor(0).data.copy()
        with self._landed:
            self._outputs[key] = out
            self._landed.notify_all()

    def take(self, key: int) -> npt.NDArray[np.float32]:
        """Wait for the output of the request started under ``key`` and hand it over."""
        with self._landed:
            if self._landed.wait_for(lambda: key in self._outputs, timeout=5.0):
                return self._outputs.pop(key)
        for queue in self._queues.values():
            queue.wait_all()  # every request in flight ends; a failed one raises here
        with self._landed:
            if key in self._outputs:
                return self._outputs.pop(key)
        raise InferenceError(f"an OpenVINO infer request ({key}) ended without an output")

    def _submit(self, batch: Image, grouped: int) -> _Requests:
        keys: list[int] = []
        for size, first, stop in ((REQUEST_BATCH, 0, grouped), (1, grouped, batch.shape[0])):
            for i in range(first, stop, size):
                key = next(self._keys)
                self._queues[size].start_async({0: np.ascontiguousarray(batch[i:i + size])}, key)
                keys.append(key)
        return _Requests(self, tuple(keys))

    def start(self, batch: Image) -> Pending:
        n = batch.shape[0]
        return self._submit(batch, n - n % REQUEST_BATCH)

    def __call__(self, batch: Image) -> npt.NDArray[np.float32]:
        n = batch.shape[0]
        # groups of REQUEST_BATCH only when every stream gets one: four photos of the first
        # stage as four single requests keep both cores busy, one request of four would not
        grouped = n - n % REQUEST_BATCH if n >= REQUEST_BATCH * self.streams else 0
        return self._submit(batch, grouped).result()


#: OpenVINO runners not yet collected, closed at exit (see :func:`_close_runners`).
_LIVE_RUNNERS: weakref.WeakSet[OpenVinoRunner] = weakref.WeakSet()


@atexit.register
def _close_runners() -> None:
    # infer queues freed during the interpreter's teardown (their callbacks are Python
    # methods) can abort the process ("terminate called without an active exception", about
    # one exit in ten with eight requests per queue): free them while the interpreter is whole
    for runner in list(_LIVE_RUNNERS):
        runner.close()


def _compile_uint8_input(
    ov: Any, core: Any, xml: Path, size: int, imgsz: int, threads: int
) -> Any:
    """Compile ``xml`` for ``size`` uint8 BGR (size, imgsz, imgsz, 3) canvases per request."""
    import openvino.properties as props
    import openvino.properties.hint as hints
    from openvino.preprocess import ColorFormat, PrePostProcessor

    model = core.read_model(str(xml))
    # letterboxed inputs are always one square size: a static shape per request size
    model.reshape({model.inputs[0]: ov.PartialShape([size, 3, imgsz, imgsz])})
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")) \
        .set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32) \
        .convert_color(ColorFormat.RGB).scale(255.0)
    config = {
        # OpenVINO picks bf16 on CPUs that have it; the val figures are f32 (or int8)
        hints.inference_precision: ov.Type.f32,
        hints.performance_mode: hints.PerformanceMode.THROUGHPUT,
        props.streams.num: threads,
        props.inference_num_threads: threads,
    }
    return core.compile_model(ppp.build(), "CPU", config)


def backend_available(backend: Backend) -> bool:
    """Whether the Python package of ``backend`` can be imported."""
    import importlib.util

    module = {
        "torch": "torch", "onnx": "onnxruntime",
        "openvino": "openvino", "openvino-int8": "openvino",
    }[backend]
    return importlib.util.find_spec(module) is not None


def choose_backend(card: ModelCard, requested: BackendChoice = "auto") -> Backend:
    """Pick the backend: the requested one, or the fastest whose export and package exist.

    Raises:
        InferenceError: the requested backend has no export in the card or is not installed.
    """
    def usable(b: Backend) -> bool:
        try:
            paths = [card.stage_path(name, b) for name in card.stages]
        except ModelCardError:
            return False
        return backend_available(b) and all(p.exists() for p in paths)

    if requested != "auto":
        if not usable(requested):
            raise InferenceError(
                f"backend {requested!r} is not usable for model {card.name!r}: "
                "its export is missing from the model folder or its package is not installed"
            )
        return requested
    for candidate in BACKENDS:
        if usable(candidate):
            return candidate
    raise InferenceError(f"model {card.name!r} has no weights any installed backend can run")


def load_runner(
    path: Path, backend: Backend, *, imgsz: int, threads: int = DEFAULT_THREADS
) -> Runner:
    """Load one network file/folder for ``backend``."""
    if backend == "torch":
        return TorchRunner(path, threads=threads)
    if backend == "onnx":
        return OnnxRunner(path, threads=threads)
    return OpenVinoRunner(path, imgsz=imgsz, threads=threads, backend=backend)


# ---------------------------------------------------------------------- one stage
class StageJob(Protocol):
    """A stage run started on a list of images; :meth:`result` gives one Detections each."""

    def result(self) -> list[Detections]: ...


@dataclass(frozen=True, slots=True)
class _ForwardJob:
    """Forward passes under way for ``shapes`` images, decoded when their output is read."""

    stage: StageRunner
    pending: Pending
    boxes: list[Letterbox]
    shapes: list[tuple[int, ...]]
    conf: float

    def result(self) -> list[Detections]:
        raw = self.pending.result()
        self.stage.check_output(raw)
        # most tiles hold no defect: decode only the images with a score over the threshold
        # (one vectorised test; an image without one decodes to no box anyway)
        scored = raw[:, 4:].max(axis=(1, 2)) >= self.conf if len(raw) else []
        return [
            self.stage.to_detections(raw[i], self.boxes[i], self.shapes[i], self.conf)
            if scored[i] else Detections.empty()
            for i in range(len(self.shapes))
        ]


@dataclass
class StageRunner:
    """One detector of the pipeline: its settings, output class mapping and loaded network."""

    name: str
    stage: Stage
    runner: Runner
    class_ids: npt.NDArray[np.int64]  # stage-local class id → output class id
    severities: npt.NDArray[np.int16]  # by output class id
    batch_size: int = 8

    @property
    def imgsz(self) -> int:
        """Square network input side."""
        return self.stage.imgsz

    def start(self, images: Sequence[Image], *, conf: float) -> StageJob:
        """Letterbox ``images`` into one uint8 batch and start the network on it."""
        size = self.imgsz
        batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
        boxes = [letterbox(img, size, out=batch[i])[1] for i, img in enumerate(images)]
        return _ForwardJob(self, self.runner.start(batch), boxes,
                           [img.shape for img in images], conf)

    def detect(self, images: Sequence[Image], *, conf: float) -> list[Detections]:
        """Run the stage on whole images (letterboxed), boxes in image pixels."""
        results: list[Detections] = []
        for first in range(0, len(images), self.batch_size):
            results += self.start(images[first:first + self.batch_size], conf=conf).result()
        return results

    def check_output(self, raw: npt.NDArray[np.float32]) -> None:
        """Refuse a batch's raw output whose class rows do not match the card's classes."""
        n_local = self.class_ids.size
        if raw.ndim != 3 or raw.shape[1] != 4 + n_local:
            raise InferenceError(
                f"stage {self.name!r}: network outputs {raw.shape[-2] - 4} classes, "
                f"the card names {n_local}"
            )

    def to_detections(
        self, raw: npt.NDArray[np.float32], box: Letterbox, shape: tuple[int, ...], conf: float
    ) -> Detections:
        """One image's raw output (checked by :meth:`check_output`) → its boxes in image
        pixels (decoded, NMS-ed, clipped)."""
        xyxy, scores, local = decode_predictions(raw, conf=conf, iou=self.stage.iou)
        cls = self.class_ids[local]
        return Detections(
            xyxy=box.to_image(xyxy), confidence=np.clip(scores, 0, 1),
            class_id=cls, severity=self.severities[cls],
        ).clipped(int(shape[1]), int(shape[0]))


class _TileFeed:
    """Crops tiles into groups of ``REQUEST_BATCH`` and starts the stage on each full group,
    so the network works on the first tiles while the next photo's are being cut. Photos'
    results are taken in the order their tiles were added."""

    def __init__(self, stage: StageRunner, conf: float) -> None:
        self.stage = stage
        self.conf = conf
        self.group: list[tuple[int, Tile]] = []
        self.crops: list[Image] = []
        self.started: deque[tuple[list[tuple[int, Tile]], StageJob]] = deque()
        self.found: deque[tuple[int, Tile, Detections]] = deque()

    def add(self, photo: int, image: Image, tile: Tile) -> None:
        self.group.append((photo, tile))
        self.crops.append(_crop(image, tile))
        if len(self.group) == REQUEST_BATCH:
            self._start()

    def _start(self) -> None:
        self.started.append((self.group, self.stage.start(self.crops, conf=self.conf)))
        self.group, self.crops = [], []

    def take(self, photo: int) -> list[tuple[Tile, Detections]]:
        """Every tile of ``photo`` with its boxes (tile pixels); earlier photos are taken."""
        if self.group and self.group[0][0] <= photo:
            self._start()  # a last, short group: its tiles go one by one on both streams
        while self.started and self.started[0][0][0][0] <= photo:
            tiles, job = self.started.popleft()
            self.found.extend((i, tile, dets) for (i, tile), dets in
                              zip(tiles, job.result(), strict=True))
        out: list[tuple[Tile, Detections]] = []
        while self.found and self.found[0][0] == photo:
            _, tile, dets = self.found.popleft()
            out.append((tile, dets))
        return out


def drop_cut_boxes(
    dets: Detections, touches_cut: npt.NDArray[np.bool_], *, min_ios: float = 0.5
) -> Detections:
    """Drop boxes cut by a tile/slice border when a whole box of the class covers them.

    A defect straddling a tile edge is seen whole in the overlapping neighbour tile and as a
    fragment in this one; the fragment's IoU with the whole box is often below the NMS
    threshold, so NMS alone would report it twice. A fragment is removed when at least
    ``min_ios`` of its area lies inside an uncut box of the same class; a fragment with no
    whole counterpart (an object larger than the overlap) is kept.
    """
    cut = np.flatnonzero(touches_cut)
    whole = np.flatnonzero(~touches_cut)
    if cut.size == 0 or whole.size == 0:
        return dets
    a, b = dets.xyxy[cut], dets.xyxy[whole]
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = np.maximum((a[:, 2:] - a[:, :2]).prod(axis=1), 1e-6)
    same_class = dets.class_id[cut][:, None] == dets.class_id[whole][None, :]
    covered = ((inter / area[:, None] >= min_ios) & same_class).any(axis=1)
    keep = np.ones(len(dets), dtype=bool)
    keep[cut[covered]] = False
    return dets[keep]


def _touches_inner_edge(
    xyxy: FloatArray, tile: Tile, image_wh: tuple[int, int], margin_px: float = 2.0
) -> npt.NDArray[np.bool_]:
    """Boxes (in image pixels) touching a tile edge that is not also an image edge."""
    x1, y1, x2, y2 = tile
    w, h = image_wh
    flags = np.zeros(xyxy.shape[0], dtype=bool)
    if x1 > 0:
        flags |= xyxy[:, 0] <= x1 + margin_px
    if y1 > 0:
        flags |= xyxy[:, 1] <= y1 + margin_px
    if x2 < w:
        flags |= xyxy[:, 2] >= x2 - margin_px
    if y2 < h:
        flags |= xyxy[:, 3] >= y2 - margin_px
    return flags


def _crop(image: Image, tile: Tile) -> Image:
    return cast(Image, crop(image, tile))


#: Sliced first stage: boxes whose intersection covers this share of the smaller one are merged.
SLICE_MERGE_IOS = 0.5


# ---------------------------------------------------------------------- the detector
class Detector:
    """Run a bundled model (single stage or cascade) over batches of BGR photos.

    Construct once per process (or per Ray actor: the constructor takes only plain values),
    then call it with a list of images; it returns one :class:`Detections` per image. Building
    one also keeps freed photo-sized memory blocks in the process
    (:func:`~vision.detect.allocator.keep_freed_memory`, process-wide).

    Args:
        model: a model name under ``models/``, a model folder, or a loaded :class:`ModelCard`.
        backend: ``auto`` (fastest available), ``torch``, ``onnx`` or ``openvino``.
        threads: CPU threads for the backend (2 on the reference machine).
        sliced: also run the first stage on overlapping windows of large photos and merge
            (SAHI-style), for small objects in e.g. 4000x3000 drone photos. ``None`` (the
            default) decides per photo from its size and the stage's trained scale
            (:func:`~vision.detect.tiling.slice_plan`: windows of the card's ``native_px``, for
            photos over 1.5 times that); ``True`` slices every photo larger than a window;
            ``False`` never slices.
        slice_px: window side in pixels (default: the first stage's ``window_px()``).
        slice_overlap: overlap between neighbouring slices, fraction of ``slice_px``.
        score_floor: report boxes down to this score instead of the card's per-class
            thresholds (evaluation needs them for AP). The cascade still only tiles along
            insulators above the insulator stage's ``conf`` (its gate), as in production.
        max_gate_boxes: most insulators per photo the cascade tiles along (best first).
        verify: check the sha256 of the files the chosen backend loads.

    Example:
        >>> detector = Detector("cplid-cascade")  # doctest: +SKIP
        >>> [dets] = detector([cv2.imread("photo.jpg")])  # doctest: +SKIP
        >>> dets.filter(class_ids=[detector.class_id("defect")])  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Path | ModelCard = DEFAULT_MODEL,
        *,
        backend: BackendChoice = "auto",
        threads: int = DEFAULT_THREADS,
        sliced: bool | None = None,
        slice_px: int | None = None,
        slice_overlap: float = 0.2,
        score_floor: float | None = None,
        max_gate_boxes: int = 32,
        verify: bool = True,
    ) -> None:
        prepare_offline()
        keep_freed_memory()  # process-wide: photo-sized blocks are reused, not faulted in again
        if threads < 1:
            raise ValueError("threads must be at least 1")
        if isinstance(model, ModelCard):
            card = model
        else:
            card = load_card(resolve_model(str(model)), verify=False)
        self.card = card
        self.backend: Backend = choose_backend(card, backend)
        if verify:
            files = [card.stages[name].file_for(self.backend) for name in card.stages]
            rels = weight_files(card.directory, files)
            missing = [r for r in rels if r not in card.sha256]
            if missing:
                raise ModelCardError(f"card {card.name!r} lists no sha256 for {missing}")
            verify_files(card.directory, card.sha256, only=rels)
        self.class_names: list[str] = [c.name for c in sorted(card.classes, key=lambda c: c.id)]
        severities = np.array([c.severity for c in sorted(card.classes, key=lambda c: c.id)],
                              dtype=np.int16)
        self.thresholds: dict[int, float] = {
            i: card.threshold(name) for i, name in enumerate(self.class_names)
        }
        self.sliced = sliced
        first_stage = next(iter(card.stages.values()))
        self.slice_px = slice_px if slice_px is not None else first_stage.window_px()
        self.slice_overlap = slice_overlap
        self.score_floor = score_floor
        self.max_gate_boxes = max_gate_boxes
        self.stages: dict[str, StageRunner] = {}
        for name, stage in card.stages.items():
            runner = load_runner(card.stage_path(name, self.backend), self.backend,
                                 imgsz=stage.imgsz, threads=threads)
            ids = np.array([self.class_names.index(c) for c in stage.classes], dtype=np.int64)
            self.stages[name] = StageRunner(name, stage, runner, ids, severities)

    # -------------------------------------------------------------- public helpers
    def class_id(self, name: str) -> int:
        """Output class id of the class called ``name``."""
        return self.class_names.index(name)

    def _stage_conf(self, stage: StageRunner) -> float:
        # decode at the lowest score anything downstream needs: the stage's own threshold
        # (the cascade gate) or a reported class's threshold, or the evaluation floor
        if self.score_floor is not None:
            return min(self.score_floor, stage.stage.conf)
        return min([stage.stage.conf, *(self.thresholds[int(c)] for c in stage.class_ids)])

    def _final_filter(self, dets: Detections) -> Detections:
        if self.score_floor is not None:
            return dets
        return dets.filter(min_confidence=self.thresholds)

    # -------------------------------------------------------------- running
    def __call__(self, images: Sequence[Image]) -> list[Detections]:
        """Detect on a batch of BGR uint8 photos; one :class:`Detections` per photo."""
        return list(self._stream(iter([_checked(img) for img in images])))  # all checked first

    def stream(self, images: Iterable[Image]) -> Iterator[Detections]:
        """Detect on a stream of BGR uint8 photos; yields one :class:`Detections` per photo,
        in order, as soon as the photo is done.

        The networks stay fed from one photo to the next: the first stage runs a chunk ahead
        of the photo being tiled, and a photo's result is assembled once ``STREAM_LOOKAHEAD``
        later photos have been tiled (so its tiles have had time to run). Called with a list,
        this is the same as :meth:`__call__`; with the photos of a long run (e.g. a decode
        stream), the cores never wait for a batch to be drained and the next one prepared.
        Photos are pulled from ``images`` at most a chunk and ``STREAM_LOOKAHEAD`` ahead.

        Raises:
            InferenceError: an image is not a non-empty BGR uint8 (H, W, 3) array (raised when
                the stream reaches it; photos pulled before it and not yet yielded are
                dropped, their forward passes collected).
        """
        return self._stream(_checked(img) for img in images)

    def _stream(self, images: Iterator[Image]) -> Iterator[Detections]:
        first = self.stages[next(iter(self.stages))]
        if self.card.kind == "single":
            for _, dets in self._first_stage_stream(first, images):
                yield self._final_filter(dets)
            return
        yield from self._cascade(images)

    def slice_windows(self, image_wh: tuple[int, int]) -> list[Tile]:
        """The windows the first stage also runs on for a photo of this size (none: whole only)."""
        if self.sliced is False:
            return []
        if self.sliced is None:
            return slice_plan(image_wh, self.slice_px, overlap=self.slice_overlap)
        if max(image_wh) <= self.slice_px:
            return []
        return stride_tiles(image_wh, self.slice_px, self.slice_overlap)

    def first_stage(self, images: Sequence[Image]) -> list[Detections]:
        """The first stage's boxes (sliced where :meth:`slice_windows` says), unfiltered by the
        reporting thresholds: what the cascade gates on and a benchmark compares."""
        first = next(iter(self.stages.values()))
        return [dets for _, dets in self._first_stage_stream(first, iter(images))]

    def _first_stage_stream(
        self, stage: StageRunner, images: Iterator[Image]
    ) -> Generator[tuple[Image, Detections], None, None]:
        """Each photo with the first stage's boxes, in order.

        Photos go to the network in chunks of at least ``REQUEST_BATCH`` inputs (whole frames
        and slicing windows); the next chunk is pulled and started before this one's boxes are
        handed out, so the network keeps working while the caller cuts tiles. Two chunks at
        most are in memory.
        """
        conf = self._stage_conf(stage)
        started: deque[tuple[list[Image], list[list[Tile]], StageJob]] = deque()

        def start_next() -> None:
            photos: list[Image] = []
            plans: list[list[Tile]] = []
            inputs = 0
            for img in images:
                photos.append(img)
                plans.append(self.slice_windows((img.shape[1], img.shape[0])))
                inputs += 1 + len(plans[-1])
                if inputs >= REQUEST_BATCH:
                    break
            if photos:
                # every photo's whole frame and every window in one batch
                crops = [*photos]
                for img, windows in zip(photos, plans, strict=True):
                    crops += [_crop(img, win) for win in windows]
                started.append((photos, plans, stage.start(crops, conf=conf)))

        try:
            start_next()
            while started:
                start_next()
                photos, plans, job = started.popleft()
                yield from zip(photos, _merge_windows(plans, job.result()), strict=True)
        finally:  # a stream left early (or failed): collect what is still running
            _settle(job for _, _, job in started)

    def _gated_tiles(self, image: Image, dets: Detections) -> list[Tile]:
        """The defect stage's tiles along the photo's insulators that pass the gate."""
        ins_stage, defect_stage = self.stages["insulator"], self.stages["defect"]
        tile_px = cast(int, defect_stage.stage.tile_px)
        overlap = defect_stage.stage.tile_overlap or 0.0
        h, w = image.shape[:2]
        # the gate is the insulator stage's own ``conf``: it may sit below the reporting
        # threshold, so a faint insulator still gets its defects looked for
        gated = dets.filter(class_ids=ins_stage.class_ids.tolist(),
                            min_confidence=ins_stage.stage.conf)
        gated = gated[np.argsort(-gated.confidence, kind="stable")[:self.max_gate_boxes]]
        tiles: dict[Tile, None] = {}
        for box in gated.xyxy:
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            xyxy = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
            tiles.update(dict.fromkeys(tiles_along(xyxy, (w, h), tile_px, overlap)))
        return list(tiles)

    def _cascade(self, images: Iterator[Image]) -> Iterator[Detections]:
        defect_stage = self.stages["defect"]
        feed = _TileFeed(defect_stage, self._stage_conf(defect_stage))
        waiting: deque[tuple[int, tuple[int, int], Detections]] = deque()
        # each photo's tiles are cut (and started in groups) as soon as its insulators are in;
        # its result is assembled when STREAM_LOOKAHEAD later photos have been tiled
        photos = self._first_stage_stream(self.stages["insulator"], images)
        try:
            for i, (img, dets) in enumerate(photos):
                for tile in self._gated_tiles(img, dets):
                    feed.add(i, img, tile)
                waiting.append((i, (img.shape[1], img.shape[0]), dets))
                if len(waiting) > STREAM_LOOKAHEAD:
                    yield self._with_defects(feed, *waiting.popleft())
            while waiting:
                yield self._with_defects(feed, *waiting.popleft())
        finally:  # a stream left early (or failed): collect the tiles still running
            photos.close()
            _settle(job for _, job in feed.started)

    def _with_defects(
        self, feed: _TileFeed, photo: int, image_wh: tuple[int, int], insulators: Detections
    ) -> Detections:
        """A photo's insulators merged with the defects its tiles found, filtered for output."""
        defect_stage = self.stages["defect"]
        found: list[Detections] = []
        flags: list[npt.NDArray[np.bool_]] = []
        for tile, dets in feed.take(photo):
            if not len(dets):
                continue
            shifted = dets.shifted(tile[0], tile[1])
            found.append(shifted)
            flags.append(_touches_inner_edge(shifted.xyxy, tile, image_wh))
        dets = insulators
        if found:
            defects = Detections.merge(found)
            defects = drop_cut_boxes(defects, np.concatenate(flags))
            defects = defects.with_nms(defect_stage.stage.iou)
            dets = Detections.merge([insulators, defects])
        return self._final_filter(dets)


def _settle(jobs: Iterable[StageJob]) -> None:
    """Wait for started jobs nobody will read, so that no output is left behind in a runner
    (a failed one has already been reported, or is moot: the stream is over)."""
    for job in list(jobs):
        with suppress(InferenceError):
            job.result()


def _checked(img: Image) -> Image:
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 \
            or img.dtype != np.uint8 or min(img.shape[:2]) < 1:
        raise InferenceError("each image must be a non-empty BGR uint8 (H, W, 3) array")
    return img


def _merge_windows(plans: list[list[Tile]], found: list[Detections]) -> Iterator[Detections]:
    """Per photo of a chunk: its whole-frame boxes, merged with its windows' where sliced.

    ``found`` holds the chunk's whole frames first, then every photo's windows in order.
    """
    at = len(plans)
    for i, windows in enumerate(plans):
        if not windows:
            yield found[i]
            continue
        parts = [found[i]]
        for win, dets in zip(windows, found[at:at + len(windows)], strict=True):
            parts.append(dets.shifted(win[0], win[1]))
        at += len(windows)
        # an object cut by window edges comes back whole: fragments are merged into the
        # best box that covers them (greedy merging on intersection over the smaller box)
        yield Detections.merge(parts).with_greedy_merge(SLICE_MERGE_IOS)


# ---------------------------------------------------------------------- dev/bench helpers
def save_untrained_weights(
    path: Path, class_names: Sequence[str], *, cfg: str = "yolo11n.yaml", seed: int = 0
) -> Path:
    """Save a randomly initialised Ultralytics checkpoint (tests and benchmarks only).

    Built from the model ``cfg`` shipped inside Ultralytics, so nothing is downloaded.
    """
    prepare_offline()
    import torch
    from ultralytics.nn import tasks
    restore_pillow_open()  # undo Ultralytics' patch of PIL.Image.open

    torch.manual_seed(seed)
    model = cast(Any, tasks).DetectionModel(cfg, nc=len(class_names), verbose=False)
    model.names = dict(enumerate(class_names))
    model.args = {"task": "detect", "imgsz": 640}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.half(), "train_args": {"task": "detect"}, "date": None,
                "version": "untrained"}, path)
    return path


def export_runtimes(
    weights: Path, *, imgsz: int, formats: Sequence[str] = ("onnx", "openvino")
) -> dict[str, Path]:
    """Export a checkpoint to ONNX (dynamic batch) and OpenVINO f32 beside it.

    Returns:
        ``{"onnx": path.onnx, "openvino": folder}`` for the formats asked for.
    """
    prepare_offline()
    from ultralytics import models
    restore_pillow_open()  # undo Ultralytics' patch of PIL.Image.open

    out: dict[str, Path] = {}
    # simplify=False: onnxslim is not a dependency and must not be auto-installed offline
    with tracing_warnings_ignored():
        exported = cast(Any, models).YOLO(str(weights)).export(
            format="onnx", imgsz=imgsz, dynamic=True, simplify=False, device="cpu", verbose=False
        )
    onnx_path = Path(exported)
    if "onnx" in formats:
        out["onnx"] = onnx_path
    if "openvino" in formats:
        import openvino as ov

        folder = weights.parent / f"{weights.stem}_openvino_model"
        folder.mkdir(parents=True, exist_ok=True)
        # converted from the ONNX file (no second torch trace); weights kept in f32
        ov_model = ov.convert_model(str(onnx_path))
        ov.save_model(ov_model, str(folder / f"{weights.stem}.xml"), compress_to_fp16=False)
        out["openvino"] = folder
    return out
