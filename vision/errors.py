"""Every error vision raises on purpose, in one tree (httpx's exception tree is the model).

A command catches :class:`VisionError` (or one wing's base) and reports the message; any other
exception is a bug. Each class keeps the built-in base that callers catching ``ValueError`` or
``RuntimeError`` relied on before the tree existed.

* VisionError
  * OfflineSetupError - the offline configuration cannot be prepared (``vision.offline``,
    e.g. no font to copy). Also a ``RuntimeError``.
  * RecordError - a JSONL file of finding records cannot be read (``vision.records``: bad
    JSON, unknown kind, newer schema). Also a ``ValueError``; ``line`` names the line at fault.
  * ModelCardError - a model card is missing, unreadable or off-schema
    (``vision.train.model_card``, read by detection and training alike). Also a ``ValueError``.
    * ModelIntegrityError - a weight file the card names is missing or its sha256 differs.
  * DetectError - the detect wing (``vision.detect``):
    * ImageSourceError - a photo path given to the reader does not exist (``images``).
      Also a ``ValueError``.
    * InferenceError - a backend cannot run: missing package or export, unreadable weights,
      bad input (``inference``). Also a ``RuntimeError``.
    * BatchError - an inspection batch cannot start or resume: wrong output folder, no photos,
      bad ledger (``pipeline``). Also a ``RuntimeError``.
    * DistributedError - Ray is not installed or the cluster cannot be reached
      (``distributed``). Also a ``RuntimeError``.
  * GeoError - the geo wing (``vision.geo``):
    * GeoreferenceError - a pixel or photo cannot be put on the ground: no pose, ray above
      the horizon (``camera``). Also a ``ValueError``.
    * LedgerError - the ledger file cannot be read at all: missing, not JSON/CSV, wrong
      shape (``ledger``). Also a ``ValueError``.
  * TrainError - the train wing (``vision.train``):
    * AnnotationError - a VOC annotation is malformed or names a class outside the class
      map (``voc``). Also a ``ValueError``.
    * DatasetLayoutError - a folder does not follow the ``images/`` + ``annotations/``
      layout (``evaluate``). Also a ``ValueError``.
    * TrainingError - training input is unusable: missing split, no images, unreadable
      image (``training``). Also a ``RuntimeError``.
    * QuantizeError - quantization cannot run: NNCF missing, no OpenVINO export, no
      calibration input (``quantize``). Also a ``RuntimeError``.

Example:
    >>> issubclass(LedgerError, GeoError) and issubclass(LedgerError, ValueError)
    True
"""

from __future__ import annotations


class VisionError(Exception):
    """Base of every error vision raises on purpose."""


class OfflineSetupError(VisionError, RuntimeError):
    """The offline configuration could not be prepared (e.g. no font to copy)."""


class RecordError(VisionError, ValueError):
    """A JSONL file of records cannot be read (bad JSON, unknown kind, newer schema, ...).

    ``line`` is the 1-based line of the file at fault, when one is.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class ModelCardError(VisionError, ValueError):
    """The model card is missing, unreadable or does not follow the schema."""


class ModelIntegrityError(ModelCardError):
    """A weight file named by the card is missing or its sha256 does not match."""


class DetectError(VisionError):
    """Base of the detect wing's errors (vision.detect)."""


class ImageSourceError(DetectError, ValueError):
    """A path given to the reader does not exist."""


class InferenceError(DetectError, RuntimeError):
    """A backend cannot run: missing package or export, unreadable weights, bad input."""


class BatchError(DetectError, RuntimeError):
    """The batch cannot start or resume (wrong output folder, no photos, bad ledger...)."""


class DistributedError(DetectError, RuntimeError):
    """Ray is not installed or the cluster cannot be reached."""


class GeoError(VisionError):
    """Base of the geo wing's errors (vision.geo)."""


class GeoreferenceError(GeoError, ValueError):
    """A pixel or photo cannot be put on the ground (no pose, ray above the horizon, ...)."""


class LedgerError(GeoError, ValueError):
    """The ledger file cannot be read at all (missing, not JSON/CSV, wrong shape)."""


class TrainError(VisionError):
    """Base of the train wing's errors (vision.train)."""


class AnnotationError(TrainError, ValueError):
    """An annotation file is malformed or names a class outside the class map."""


class DatasetLayoutError(TrainError, ValueError):
    """The folder does not follow the ``images/`` + ``annotations/`` layout."""


class TrainingError(TrainError, RuntimeError):
    """Training input is unusable (missing split, no images, unreadable image)."""


class QuantizeError(TrainError, RuntimeError):
    """Quantization cannot run: NNCF missing, no OpenVINO export, no calibration input."""
