"""keep_freed_memory: photo-sized blocks freed by one batch are reused by the next without
page faults (each fault costs about 2 µs on the reference machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# batches of eight decoded 1152x864 photos, as the detector's decode stream holds them: filled,
# then all freed; returns what keep_freed_memory said and the page faults per photo after warm-up
_BATCHES = """
import json, resource, sys
import numpy as np
from vision.detect.allocator import keep_freed_memory
kept = keep_freed_memory()
def batch():
    photos = [np.full((864, 1152, 3), 7, np.uint8) for _ in range(8)]
    return sum(int(p[0, 0, 0]) for p in photos)
batch(); batch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    batch()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 80
print(json.dumps({"kept": kept, "faults_per_photo": faults}))
"""
PAGES_PER_PHOTO = 864 * 1152 * 3 // 4096  # 729


def _run(env_value: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "FIELDOPS_KEEP_FREED_MEMORY"}
    if env_value is not None:
        env["FIELDOPS_KEEP_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", _BATCHES], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True, timeout=60)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_freed_photo_buffers_are_reused_without_page_faults() -> None:
    result = _run(None)
    assert result["kept"] is True
    assert isinstance(result["faults_per_photo"], float)
    assert result["faults_per_photo"] < PAGES_PER_PHOTO / 20


def test_turned_off_each_batch_faults_its_photos_in_again() -> None:
    # the same loop with the setting off: glibc trims the freed batch and every page of the
    # next one is faulted in (what the setting saves)
    result = _run("0")
    assert result["kept"] is False
    assert isinstance(result["faults_per_photo"], float)
    assert result["faults_per_photo"] > PAGES_PER_PHOTO / 2
