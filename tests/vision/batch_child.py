"""A batch run in its own process, for the crash/resume test of vision.detect.pipeline.

Usage: python batch_child.py PHOTOS LEDGER OUT BLOCK_AFTER GATE
       python batch_child.py ray PHOTOS LEDGER OUT PROBE

The detector is a deterministic fake (the external seam): one insulator (asset marker) box in
the middle of every photo, a defect on it, and a tree (corridor hazard) at the bottom. After
BLOCK_AFTER detector calls it blocks opening the FIFO GATE, which nobody writes to, so the
parent can kill the process at a known point in the batch.

The ``ray`` form runs the batch with ``--engine ray`` semantics (a private local cluster) and,
when the detector actor starts (the cluster is up), writes the interfaces and listening
sockets it sees to PROBE, so the parent can check that Ray stayed on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vision.detect.detections import Detections
from vision.detect.pipeline import BatchOptions, DetectorFn, run_batch
from vision.train.model_card import CardClass

CLASSES = [
    CardClass(id=0, name="insulator", role="asset_marker", severity=0),
    CardClass(id=1, name="defect", role="defect", severity=3),
    CardClass(id=2, name="tree", role="corridor_hazard", severity=2),
]


def fake_detector(images: Sequence[NDArray[np.uint8]]) -> list[Detections]:
    """Boxes at fixed fractions of each photo's size."""
    out = []
    for image in images:
        h, w = image.shape[:2]
        out.append(Detections(
            xyxy=np.array([[w * .45, h * .45, w * .55, h * .55],
                           [w * .48, h * .48, w * .52, h * .52],
                           [w * .40, h * .50, w * .50, h * .55]], dtype=np.float32),
            confidence=np.array([0.9, 0.7, 0.6], dtype=np.float32),
            class_id=np.array([0, 1, 2], dtype=np.int64),
            severity=np.array([0, 3, 2], dtype=np.int16),
        ))
    return out


def probed_detector(probe: str) -> DetectorFn:
    """Detector factory for the Ray actor: records the network view, returns the fake."""
    addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    listen = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    Path(probe).write_text(json.dumps({"addr": addrs, "listen": listen}), encoding="utf-8")
    return fake_detector


def main_ray(argv: Sequence[str]) -> None:
    from vision.detect.distributed import run_batch_ray

    photos, ledger, out, probe = argv
    run_batch_ray(Path(photos), [Path(ledger)], Path(out),
                  detector_factory=partial(probed_detector, probe), classes=CLASSES,
                  options=BatchOptions(batch_size=2, progress=False))


def main(argv: Sequence[str]) -> None:
    photos, ledger, out, block_after, gate = argv
    calls = 0

    def detector(images: Sequence[NDArray[np.uint8]]) -> list[Detections]:
        nonlocal calls
        calls += 1
        if calls > int(block_after):
            with open(gate, encoding="utf-8"):  # blocks: no writer ever opens the FIFO
                pass
        return fake_detector(images)

    run_batch(Path(photos), [Path(ledger)], Path(out), detector, CLASSES,
              options=BatchOptions(batch_size=1, progress=False))


if __name__ == "__main__":
    if sys.argv[1] == "ray":
        main_ray(sys.argv[2:])
    else:
        main(sys.argv[1:])
