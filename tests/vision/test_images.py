"""Streaming image reader: error records, EXIF orientation, bounded memory."""

from __future__ import annotations

import gc
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vision.detect.images import ImageRecord, decode_image, stream_images
from vision.errors import ImageSourceError


def _write_jpeg(path: Path, value: int, size: tuple[int, int] = (48, 32)) -> Path:
    img = np.full((size[1], size[0], 3), value, dtype=np.uint8)
    assert cv2.imwrite(str(path), img)
    return path


def test_corrupt_and_non_image_files_yield_error_records_and_the_batch_goes_on(
    tmp_path: Path,
) -> None:
    _write_jpeg(tmp_path / "a.jpg", 10)
    good = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "b.jpg").write_bytes(good[:20])  # truncated inside the header
    (tmp_path / "c.jpg").write_bytes(b"")  # empty
    _write_jpeg(tmp_path / "d.jpg", 200)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    with stream_images([tmp_path, notes]) as stream:
        records = list(stream)
    assert [r.path.name for r in records] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "notes.txt"]
    assert [r.ok for r in records] == [True, False, False, True, False]
    assert all(r.error for r in records if not r.ok)
    assert records[3].image is not None and int(records[3].image.mean()) == 200
    assert [r.index for r in records] == [0, 1, 2, 3, 4]


def test_folders_are_walked_for_image_suffixes_only(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _write_jpeg(tmp_path / "sub" / "x.JPG", 1)
    (tmp_path / "readme.md").write_text("x")
    with stream_images([tmp_path]) as stream:
        assert [r.path.name for r in stream] == ["x.JPG"]


def test_missing_source_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ImageSourceError, match="nope"):
        stream_images([tmp_path / "nope"])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 80x40 landscape, left half white; EXIF orientation 6 = rotate 90° clockwise to view
    pixels = np.zeros((40, 80, 3), dtype=np.uint8)
    pixels[:, :40] = 255
    pil = Image.fromarray(pixels)
    exif = pil.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    pil.save(buf, "JPEG", exif=exif, quality=95)
    path = tmp_path / "rotated.jpg"
    path.write_bytes(buf.getvalue())
    image = decode_image(path)
    assert image.shape == (80, 40, 3)  # portrait as a person sees it
    # after a clockwise quarter turn the white left half becomes the top half
    assert image[:35].mean() > 200
    assert image[45:].mean() < 50


def test_stream_holds_only_a_few_decoded_photos_at_a_time(tmp_path: Path) -> None:
    for i in range(200):
        _write_jpeg(tmp_path / f"p{i:03d}.jpg", i)
    prefetch = 3
    most_waiting = 0
    most_alive = 0
    seen = 0
    with stream_images([tmp_path], prefetch=prefetch) as stream:
        for i, record in enumerate(stream):
            seen += 1
            assert record.ok
            most_waiting = max(most_waiting, stream.in_flight, stream.produced - stream.consumed)
            if i % 20 == 0:
                # type() reads the C-level type: isinstance() would touch __class__ of every object
                alive = sum(type(o) is ImageRecord for o in gc.get_objects())
                most_alive = max(most_alive, alive)
            del record
    assert seen == 200
    assert most_waiting <= prefetch
    # queued records + the one being handed over + the one just consumed
    assert most_alive <= prefetch + 2


def test_closing_an_abandoned_stream_stops_the_decode_thread(tmp_path: Path) -> None:
    for i in range(20):
        _write_jpeg(tmp_path / f"p{i:02d}.jpg", i)
    stream = stream_images([tmp_path], prefetch=2)
    next(stream)
    stream.close()
    assert not stream._thread.is_alive()
    with pytest.raises(StopIteration):
        next(stream)
