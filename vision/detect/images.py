"""Streaming image reader for detection batches.

``stream_images(paths)`` walks files, folders and lists of them and yields one
:class:`ImageRecord` per file, in order, decoded by a background thread into a small bounded
queue. OpenCV's decoder releases the GIL, so decoding the next photo overlaps with inference on
the current one and both cores stay busy, while memory stays bounded by the queue size whatever
the number of photos.

A file that cannot be read or decoded yields a record with ``error`` set (``image`` is None);
the stream goes on with the next file. EXIF orientation is applied (OpenCV's ``IMREAD_COLOR``
honours the Orientation tag), so boxes are reported in the frame a person sees.

Truncated JPEGs (an SD card often leaves a drone JPEG a few bytes short): OpenCV's decoder
refuses a JPEG without its end-of-image marker (``imdecode`` returns None, whether 8 bytes or
half the file are missing), while PIL with ``LOAD_TRUNCATED_IMAGES`` decodes what is there and
fills the rest grey. OpenCV decodes exactly the same pixels once the missing end marker is
appended, so :func:`decode_image` does that (no process-wide PIL switch, same EXIF handling)
and the record is flagged ``truncated``; measured on a CPLID photo: 8 bytes short, mean pixel
difference 0.002 from the whole file; half the file, the lower half grey. A file cut inside its
headers decodes to nothing and stays an error record with the reason.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vision.errors import ImageSourceError

#: Suffixes picked up when a folder is walked (explicitly named files are always tried).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})
# Decoding a 12 MP JPEG to BGR takes ~36 MB: four queued photos stay well under 200 MB.
DEFAULT_PREFETCH = 4


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One input photo: decoded BGR pixels, or the reason it could not be read."""

    index: int
    path: Path
    image: npt.NDArray[np.uint8] | None
    error: str | None = None
    #: The file is a JPEG cut short (no end-of-image marker): ``image`` holds what it had.
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """True when the photo was decoded."""
        return self.image is not None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the decoded photo; (0, 0) for an error record."""
        if self.image is None:
            return (0, 0)
        return (int(self.image.shape[1]), int(self.image.shape[0]))


def iter_image_paths(sources: Iterable[Path | str], *, recursive: bool = True) -> Iterator[Path]:
    """Expand files and folders into image paths, folders sorted by name.

    Args:
        sources: files (kept whatever their suffix, so a non-image is reported, not ignored)
            and folders (walked for files with an image suffix).
        recursive: walk sub-folders too.

    Raises:
        ImageSourceError: a source does not exist.
    """
    for source in sources:
        path = Path(source)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = (p for p in path.glob(pattern) if p.is_file())
            yield from sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            yield path
        else:
            raise ImageSourceError(f"no such file or folder: {path}")


_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"


def is_truncated_jpeg(data: bytes | npt.NDArray[np.uint8]) -> bool:
    """True for a JPEG whose bytes stop before its end-of-image marker (trailing zero padding,
    as some cameras write, is ignored).

    Example:
        >>> is_truncated_jpeg(b"\\xff\\xd8 data \\xff\\xd9"), is_truncated_jpeg(b"\\xff\\xd8 data")
        (False, True)
    """
    raw = data.tobytes() if isinstance(data, np.ndarray) else data
    return raw[:2] == _JPEG_SOI and not raw.rstrip(b"\x00").endswith(_JPEG_EOI)


def decode_image_ex(path: Path) -> tuple[npt.NDArray[np.uint8], bool]:
    """Read and decode one photo to BGR uint8, EXIF orientation applied; also whether it was a
    truncated JPEG (decoded as far as its bytes go, the rest grey).

    Raises:
        ValueError: the file is empty, not an image or cut short inside its headers (OpenCV
            itself refuses images over 2**30 pixels).
        OSError: the file cannot be read.
    """
    raw = np.fromfile(path, dtype=np.uint8)  # also works for non-ASCII paths, unlike imread
    if raw.size == 0:
        raise ValueError("empty file")
    truncated = is_truncated_jpeg(raw[:2].tobytes() + raw[-64:].tobytes())
    if truncated:
        # OpenCV refuses a JPEG without its end marker; with the marker appended it decodes
        # every complete block and fills the missing ones grey.
        raw = np.concatenate([raw, np.frombuffer(_JPEG_EOI, dtype=np.uint8)])
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if image is None:
        if truncated:
            raise ValueError(
                f"a JPEG cut short after {raw.size - 2} bytes, before any image data: "
                "nothing to decode"
            )
        raise ValueError("not a decodable image")
    return np.ascontiguousarray(image, dtype=np.uint8), truncated


def decode_image(path: Path) -> npt.NDArray[np.uint8]:
    """Read and decode one photo to BGR uint8, EXIF orientation applied (a truncated JPEG is
    decoded as far as its bytes go; :func:`decode_image_ex` also says whether it was).

    Raises:
        ValueError: the file is empty, not an image or truncated beyond repair (OpenCV itself
            refuses images over 2**30 pixels).
        OSError: the file cannot be read.
    """
    return decode_image_ex(path)[0]


def _read_record(index: int, path: Path) -> ImageRecord:
    try:
        image, truncated = decode_image_ex(path)
    except (OSError, ValueError, cv2.error) as exc:
        return ImageRecord(index=index, path=path, image=None, error=f"{type(exc).__name__}: {exc}")
    return ImageRecord(index=index, path=path, image=image, truncated=truncated)


_DONE = object()


class ImageStream:
    """Iterator of :class:`ImageRecord` fed by one decode thread through a bounded queue.

    Use it as a context manager (or exhaust it) so the thread stops when the consumer stops.
    ``produced`` and ``consumed`` count records, so callers and tests can check that no more
    than ``prefetch`` decoded photos ever wait in memory.
    """

    def __init__(self, sources: Iterable[Path | str], *, prefetch: int = DEFAULT_PREFETCH) -> None:
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.sources = [Path(s) for s in sources]
        missing = [str(s) for s in self.sources if not s.exists()]
        if missing:
            # fail before any work starts: a typo in a path is not a per-photo error
            raise ImageSourceError(f"no such file or folder: {', '.join(missing)}")
        self.prefetch = prefetch
        self.produced = 0
        self.consumed = 0
        self._paths = iter_image_paths(self.sources)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="image-decode", daemon=True)
        self._started = False
        self._finished = False

    def _put(self, item: Any) -> bool:
        # Poll the stop flag so an abandoned stream never leaves the thread blocked on put().
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for index, path in enumerate(self._paths):
                record = _read_record(index, path)
                if not self._put(record):
                    return
                self.produced += 1
        except BaseException as exc:
            self._put(exc)
            return
        self._put(_DONE)

    def __iter__(self) -> ImageStream:
        return self

    def __next__(self) -> ImageRecord:
        if self._finished:
            raise StopIteration
        if not self._started:
            self._started = True
            self._thread.start()
        item = self._queue.get()
        if item is _DONE:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        self.consumed += 1
        record: ImageRecord = item
        return record

    @property
    def in_flight(self) -> int:
        """Decoded records not yet handed to the consumer."""
        return self._queue.qsize()

    def close(self) -> None:
        """Stop the decode thread and drop queued photos."""
        self._stop.set()
        self._finished = True
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._started:
            self._thread.join(timeout=5)

    def __enter__(self) -> ImageStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream_images(
    sources: Iterable[Path | str], *, prefetch: int = DEFAULT_PREFETCH
) -> ImageStream:
    """Stream decoded photos from files/folders with a background decode thread.

    Args:
        sources: image files and/or folders (walked recursively, sorted by path).
        prefetch: how many decoded photos may wait in memory ahead of the consumer.

    Returns:
        An :class:`ImageStream`; iterate it, ideally inside ``with``.

    Raises:
        ImageSourceError: a source does not exist (checked before anything is decoded).

    Example:
        >>> with stream_images(["photos/"]) as stream:  # doctest: +SKIP
        ...     for record in stream:
        ...         if record.ok:
        ...             print(record.path, record.size)
    """
    return ImageStream(sources, prefetch=prefetch)
