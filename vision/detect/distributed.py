"""The inspection batch on Ray Data — the only module that imports ray.

``run_batch_ray`` runs the same batch as :func:`vision.detect.pipeline.run_batch`: the same state
files, the same per-photo processing and the same final reconciliation, so both engines produce
the same findings for the same photos. Only detection and per-photo geo-referencing move to
Ray: the detector lives in a stateful actor (``map_batches`` with a callable class, built once
per actor, ``num_cpus`` ≤ 1 each) and the driver alone appends to the progress file and writes
crops, so resuming after a crash works exactly as with the local engine.

Without ``address`` a private local cluster is started for the run and stopped after it; it is
bound to 127.0.0.1 with auth disabled and usage statistics off (RAY_AUTH_MODE=disabled,
RAY_USAGE_STATS_ENABLED=0). On a 2-core machine Ray brings no speed (``ray.init`` alone takes
~3 s and ~0.7 GB); it is for spreading a large batch over many machines, whose workers must see
the photo folder at the same path (a shared mount).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil  # type: ignore[import-untyped]
from numpy.typing import NDArray
from tqdm import tqdm  # type: ignore[import-untyped]

from vision.detect.images import ImageRecord, decode_image_ex
from vision.detect.pipeline import (
    PROGRESS_FILE,
    BatchOptions,
    BatchSummary,
    DetectorFn,
    LiveOutputs,
    PhotoContext,
    ProgressEntry,
    append_entry,
    detect_records,
    finish_batch,
    open_batch,
    process_photo,
    write_crops,
)
from vision.errors import DistributedError
from vision.train.model_card import CardClass

#: Builds the detector inside each actor (must be picklable: a class or a functools.partial).
DetectorFactory = Callable[[], DetectorFn]
#: A small object store is plenty: only photo paths and finished JSON lines travel through it.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
LOCAL_START_ATTEMPTS = 2


def _read(index: int, path: Path) -> ImageRecord:
    try:
        image, truncated = decode_image_ex(path)
    except (OSError, ValueError, cv2.error) as exc:
        return ImageRecord(index=index, path=path, image=None, error=f"{type(exc).__name__}: {exc}")
    return ImageRecord(index=index, path=path, image=image, truncated=truncated)


class DetectActor:
    """Ray Data callable class: holds one detector, turns photo paths into progress lines."""

    def __init__(self, factory: DetectorFactory, context: PhotoContext) -> None:
        self.detector = factory()
        self.context = context

    def __call__(self, batch: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        """Detect and geo-reference a batch of photos; one JSON result per photo."""
        keys = [str(k) for k in batch["key"]]
        records = [_read(i, Path(str(p))) for i, p in enumerate(batch["path"])]
        found = detect_records(self.detector, records)
        out = []
        for rec, dets, key in zip(records, found, keys, strict=True):
            done = process_photo(rec, dets, key, self.context)
            out.append(json.dumps({
                "entry": done.entry.model_dump_json(),
                "crops": {k: base64.b64encode(v).decode("ascii") for k, v in done.crops.items()},
            }))
        return {"result": np.array(out, dtype=object)}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise DistributedError(
            "--engine ray needs Ray: pip install 'fieldops[ray]' (the local engine needs none)"
        ) from exc
    return ray


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


def loopback_only_host() -> bool:
    """True when every network interface here is loopback (e.g. inside ``unshare -n``)."""
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(a.address):
                return False
    return True


def exposed_listeners() -> list[str]:
    """Listening sockets of this process and its children not bound to loopback."""
    me = psutil.Process()
    found = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN and not _is_loopback(c.laddr.ip):
                host = f"[{c.laddr.ip}]" if ":" in c.laddr.ip else c.laddr.ip
                found.append(f"{name} {host}:{c.laddr.port}")
    return sorted(found)


def _start_local(ray: Any, actors: int, *, attempts: int = LOCAL_START_ATTEMPTS) -> None:
    """Start the private cluster, retrying: Ray gives its raylet a fixed 30 s to register,
    which a busy small machine can miss."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                num_cpus=actors + 1,  # one CPU per actor plus one for Ray Data's own tasks
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                log_to_driver=False,
                configure_logging=False,
            )
            return
        except Exception as exc:  # ray raises plain Exception/RuntimeError variants
            ray.shutdown()
            if attempt == attempts:
                raise DistributedError(f"cannot start a local Ray cluster: {exc}") from exc


def _connect(ray: Any, address: str | None, actors: int, *, allow_exposed: bool = False) -> bool:
    """Join ``address`` or start a private loopback cluster; True when we started it.

    Ray 2.x gRPC servers listen on every interface even with a 127.0.0.1 node address, and
    the local cluster runs without auth: on a host with a real network interface that would
    let anyone on the network run code. Unless ``allow_exposed``, such a cluster is stopped
    and refused; run the command in a loopback-only network namespace instead.
    """
    if address is None:
        # Decided before ray starts: a throw-away single-machine cluster needs no token, and
        # nothing may phone home from an offline machine.
        os.environ["RAY_AUTH_MODE"] = "disabled"
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        _start_local(ray, actors)
        if not allow_exposed and not loopback_only_host():
            exposed = exposed_listeners()
            if exposed:
                ray.shutdown()
                raise DistributedError(
                    "the local Ray cluster (auth disabled) listens beyond loopback: "
                    f"{', '.join(exposed[:4])}; run it in a loopback-only network namespace, "
                    "e.g. unshare -rn sh -c 'ip link set lo up && fieldops vision run ...', "
                    "join a secured cluster with --address, or allow it explicitly on a "
                    "trusted network (--allow-exposed-ray)"
                )
        return True
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except Exception as exc:
        raise DistributedError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    return False


def run_batch_ray(
    photos: Path,
    ledger_paths: Sequence[Path],
    out_dir: Path,
    *,
    detector_factory: DetectorFactory,
    classes: Sequence[CardClass],
    options: BatchOptions | None = None,
    address: str | None = None,
    actors: int = 1,
    num_cpus_per_actor: float = 1.0,
    allow_exposed: bool = False,
) -> BatchSummary:
    """Run (or resume) an inspection batch with detection on Ray Data.

    Args:
        photos: a folder of photos or one photo (same path on every node).
        ledger_paths: ledger GeoJSON/CSV files.
        out_dir: output folder on the driver; rerunning resumes.
        detector_factory: builds the detector in each actor, e.g.
            ``functools.partial(Detector, "cplid-cascade", threads=1)``.
        classes: the model card's classes.
        options: batch settings (``batch_size`` is the photos per actor call).
        address: Ray cluster address; None starts a local loopback cluster for this run.
        actors: detector actors (one model copy each).
        num_cpus_per_actor: CPUs reserved per actor (≤ 1 on small machines).
        allow_exposed: accept a local cluster listening beyond loopback (see ``_connect``).

    Raises:
        DistributedError: Ray missing or unreachable.
        BatchError: the batch cannot start (``vision.errors``).
    """
    if actors < 1 or not 0 < num_cpus_per_actor <= 64:
        raise DistributedError("actors must be ≥ 1 and num_cpus_per_actor in (0, 64]")
    opts = options or BatchOptions()
    with open_batch(photos, ledger_paths, out_dir, classes, opts) as batch:
        skipped = len(batch.done)
        processed = 0
        live = LiveOutputs(batch, total=len(batch.all_keys), done=skipped)
        if batch.todo:
            ray = _import_ray()
            started = _connect(ray, address, actors, allow_exposed=allow_exposed)
            try:
                ctx = ray.data.DataContext.get_current()
                ctx.enable_progress_bars = False
                items = [{"key": k, "path": str(p.resolve())} for k, p in batch.todo]
                results = ray.data.from_items(items).map_batches(
                    DetectActor,
                    fn_constructor_kwargs={"factory": detector_factory, "context": batch.context},
                    batch_size=opts.batch_size,
                    batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=actors),
                    num_cpus=num_cpus_per_actor,
                )
                with (
                    (out_dir / PROGRESS_FILE).open("a", encoding="utf-8") as fh,
                    tqdm(total=len(batch.all_keys), initial=skipped, unit="photo", desc="photos",
                         disable=not opts.progress) as bar,
                ):
                    for row in results.iter_rows():
                        payload = json.loads(str(row["result"]))
                        entry = ProgressEntry.model_validate_json(payload["entry"])
                        write_crops(out_dir, {k: base64.b64decode(v)
                                              for k, v in payload["crops"].items()})
                        append_entry(fh, entry)
                        processed += 1
                        bar.update(1)
                        fh.flush()
                        live.photos_done(1)
            finally:
                if started:
                    ray.shutdown()
        return finish_batch(batch, skipped=skipped, processed=processed,
                            elapsed_s=live.elapsed_s())
