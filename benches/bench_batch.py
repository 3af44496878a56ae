"""A whole inspection batch of full-size drone photos: wall time, rate and peak memory.

    .venv/bin/python benches/bench_batch.py ../shared/datasets/cplid/val/images \
        [--count 2000] [--size 4000x3000] [--distinct 40]

``--distinct`` photos of ``--size`` are composed at native scale from the CPLID photos given
(benches/bench_slicing.py's ``compose``: insulators keep their dataset size), written as JPEG,
and copied to ``--count`` files made distinct by a few bytes after each JPEG's end marker (as
the pipeline tests do), in a temporary folder that is removed at the end. ``fieldops vision run``
then runs on them as an inspector would run it (a real process, the bundled model through the
fastest backend, the fixture ledger), while this script reads the batch's ``progress.json``
every few seconds, as an inspector's browser would read the running report.

Printed: photos, wall time, photos per minute, peak resident memory and CPU time of the run
(the process and its children, from ``getrusage``), the load average, how many times the
running batch's outputs were seen rewritten, and the rate and time left the batch itself
reported half-way. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benches.bench_slicing import PHOTO_SUFFIXES, compose, parse_size  # noqa: E402

LEDGER = ROOT / "tests" / "fixtures" / "drone" / "ledger.geojson"


def make_photos(sources: Path, folder: Path, *, count: int, size: tuple[int, int],
                distinct: int) -> int:
    """Write ``count`` distinct full-size photos into ``folder``; returns their total bytes."""
    photos = sorted(p for p in sources.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    folder.mkdir(parents=True)
    bases = []
    for seed in range(min(distinct, count)):
        image, _ = compose(photos, size, seed)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise SystemExit("cannot encode a composed photo")
        bases.append(jpeg.tobytes())
    total = 0
    for i in range(count):
        data = bases[i % len(bases)] + i.to_bytes(4, "big")  # distinct files, same pixels
        (folder / f"DJI_{i:05d}.JPG").write_bytes(data)
        total += len(data)
    return total


def watch(
    out: Path, proc: subprocess.Popen[bytes], every_s: float
) -> tuple[int, dict[str, Any] | None]:
    """Poll the running batch's progress.json until the run ends; returns how many distinct
    rewrites were seen and the progress read closest to half-way."""
    seen: set[int] = set()
    half: dict[str, Any] | None = None
    while proc.poll() is None:
        path = out / "progress.json"
        try:
            progress = json.loads(path.read_text())
        except (OSError, ValueError):
            progress = None
        if progress and progress.get("state") == "running":
            seen.add(int(progress["done"]))
            if half is None and progress["done"] >= progress["total"] / 2:
                half = progress
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=every_s)
    return len(seen), half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", type=Path, help="folder of CPLID photos (e.g. its val/images)")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--distinct", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        started = time.perf_counter()
        total = make_photos(args.photos, work / "photos", count=args.count,
                            size=parse_size(args.size), distinct=args.distinct)
        print(f"{args.count} photos of {args.size} ({total / 2**30:.1f} GiB) written in "
              f"{time.perf_counter() - started:.0f} s; {os.cpu_count()} CPUs")
        out = work / "out"
        cmd = [sys.executable, "-m", "fieldops.cli", "vision", "run", str(work / "photos"),
               "--ledger", str(LEDGER), "--out", str(out), "--lang", "en"]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        rewrites, half = watch(out, proc, every_s=2.0)
        wall = time.perf_counter() - started
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"vision run failed ({proc.returncode}): {err[-2000:]}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mib, cpu_s = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
        final = json.loads((out / "progress.json").read_text())
        print(f"wall {wall:.0f} s ({wall / 60:.1f} min) for {final['total']} photos: "
              f"{60 * final['total'] / wall:.1f} photos/min, {1000 * wall / final['total']:.0f} "
              f"ms per photo (start-up included)")
        print(f"peak RSS of the run: {peak_mib:.0f} MiB; CPU time of the run {cpu_s:.0f} s "
              f"({1000 * cpu_s / final['total']:.0f} ms per photo); load average at the end "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work on the machine "
              "stretches the wall time, much less the CPU time)")
        print(f"running outputs seen rewritten {rewrites} times; half-way the batch said: "
              f"{json.dumps(half)}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
