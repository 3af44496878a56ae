"""Stand-in evidence for the README's walk-through: the files a crew's phone would send.

    .venv/bin/python docs/walkthrough/make_photos.py OUT_DIR --lat 22.5405 --lon 113.9345 \
        --meter 1100109000000000000012

writes into OUT_DIR:
- site.jpg, meter_box.jpg, wiring.jpg, seal.jpg, meter_before.jpg, meter_after.jpg: distinct
  pictures (random tiles, so the service's reused-photo check sees six different photos) whose
  EXIF carries the GPS position given and the capture time now, as a phone camera writes them;
- barcode.jpg: the meter's Code 128 label (drawn by zxing-cpp, which the service decodes with),
  with the same EXIF;
- signature.png: a drawn signature on a transparent background.

Only the service's own dependencies are used (Pillow, NumPy, zxing-cpp), so the `.venv` that
`make run` creates is enough. Photos without GPS or time are accepted too, but flagged.
"""

from __future__ import annotations

import argparse
import datetime as dt
from fractions import Fraction
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image, ImageDraw

PHOTO_KINDS = ("site", "meter_box", "wiring", "seal", "meter_before", "meter_after")
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    degrees = int(value)
    minutes_f = (value - degrees) * 60
    minutes = int(minutes_f)
    seconds = Fraction(round((minutes_f - minutes) * 60 * 10000), 10000)
    return Fraction(degrees), Fraction(minutes), seconds


def _exif(lat: float, lon: float, taken: dt.datetime) -> Image.Exif:
    exif = Image.Exif()
    exif.get_ifd(_EXIF_IFD).update(
        {
            _DATETIME_ORIGINAL: taken.strftime("%Y:%m:%d %H:%M:%S"),
            _OFFSET_TIME_ORIGINAL: "+00:00",
        }
    )
    exif.get_ifd(_GPS_IFD).update(
        {
            1: "N" if lat >= 0 else "S",
            2: _dms(abs(lat)),
            3: "E" if lon >= 0 else "W",
            4: _dms(abs(lon)),
        }
    )
    return exif


def _tiles(rng: np.random.Generator) -> Image.Image:
    """A 320×240 picture of random coloured 40 px tiles: unlike any other photo."""
    grid = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(grid.repeat(40, axis=0).repeat(40, axis=1), "RGB")


def _label(meter: str) -> Image.Image:
    code = zxingcpp.create_barcode(meter, zxingcpp.BarcodeFormat.Code128)
    return Image.fromarray(np.asarray(code.to_image(scale=3, add_quiet_zones=True))).convert("RGB")


def _signature() -> Image.Image:
    image = Image.new("RGBA", (300, 100), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(10, 80), (120, 15), (290, 90)], fill=(0, 0, 0, 255), width=4)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--lat", type=float, required=True)
    parser.add_argument("--lon", type=float, required=True)
    parser.add_argument("--meter", required=True, help="the 22-digit meter code on the label")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    exif = _exif(args.lat, args.lon, dt.datetime.now(dt.UTC))
    rng = np.random.default_rng()
    for kind in PHOTO_KINDS:
        _tiles(rng).save(args.out / f"{kind}.jpg", "JPEG", quality=85, exif=exif)
    _label(args.meter).save(args.out / "barcode.jpg", "JPEG", quality=90, exif=exif)
    _signature().save(args.out / "signature.png", "PNG")
    print(f"wrote {len(PHOTO_KINDS) + 2} files to {args.out}")


if __name__ == "__main__":
    main()
