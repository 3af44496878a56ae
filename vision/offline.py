"""Offline environment for Ultralytics and the CPU runtimes.

Call :func:`prepare_offline` BEFORE ``import ultralytics``: Ultralytics reads ``YOLO_OFFLINE`` and
``YOLO_CONFIG_DIR`` at import time, writes its settings file there, and otherwise tries to
download the Arial fonts for its plots and to phone home. This module never imports Ultralytics.

What it sets up:

- ``YOLO_OFFLINE=1`` (no online checks or downloads), a project-owned ``YOLO_CONFIG_DIR``
  (default ``~/.cache/fieldops/yolo-config``) whose ``Ultralytics/`` folder (where Ultralytics
  reads its settings and fonts) holds DejaVuSans from matplotlib's own data, copied as
  ``Arial.ttf`` and ``Arial.Unicode.ttf`` (the names Ultralytics looks for), and a
  ``settings.json`` with sync, hub and integrations off;
- ONNX Runtime and OpenVINO telemetry off (``ORT_DISABLE_TELEMETRY``; OpenVINO's opt-out
  consent file ``~/intel/openvino_telemetry`` holding ``0`` unless the user already chose).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vision.errors import OfflineSetupError

#: Root of everything fieldops keeps outside the checkout (converted data, runs, logs, config).
CACHE_ROOT_ENV = "FIELDOPS_CACHE"
# torch.jit.TracerWarning texts that Ultralytics' Detect head triggers while it is traced
_TRACER_MESSAGES = (
    r".* might cause the trace to be incorrect",
    r".* registered as constants in the trace",
)
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
ULTRALYTICS_SUBDIR = "Ultralytics"

# Ultralytics settings that must not reach the network (only keys of its settings schema:
# unknown keys make it rewrite the file and warn on every start).
_SETTINGS_OFF: dict[str, object] = {
    "sync": False,
    "api_key": "",
    "clearml": False,
    "comet": False,
    "dvc": False,
    "mlflow": False,
    "raytune": False,
    "tensorboard": False,
    "wandb": False,
}


def cache_root() -> Path:
    """Return fieldops' cache root (``$FIELDOPS_CACHE`` or ``~/.cache/fieldops``)."""
    env = os.environ.get(CACHE_ROOT_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fieldops"


def _matplotlib_font() -> Path:
    # matplotlib ships DejaVuSans in its package data; locating it by spec avoids importing
    # matplotlib (slow) just to find a file.
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        raise OfflineSetupError("matplotlib is not installed: no TrueType font to give Ultralytics")
    font = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not font.is_file():
        raise OfflineSetupError(f"matplotlib's DejaVuSans.ttf is missing at {font}")
    return font


def _write_settings(config_dir: Path) -> None:
    # Ultralytics' default dirs derive from the working directory at first start (e.g. the
    # checkout); point them at the cache so nothing it writes lands in the repository.
    wanted = dict(_SETTINGS_OFF)
    wanted.update(
        datasets_dir=str(cache_root() / "datasets"),
        weights_dir=str(cache_root() / "weights"),
        runs_dir=str(cache_root() / "runs"),
    )
    settings_file = config_dir / "settings.json"
    current: dict[str, object] = {}
    if settings_file.is_file():
        try:
            loaded = json.loads(settings_file.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                current = loaded
        except (json.JSONDecodeError, UnicodeDecodeError):
            current = {}  # a corrupt settings file is rebuilt by Ultralytics from defaults
    if all(current.get(k) == v for k, v in wanted.items()):
        return
    current.update(wanted)
    tmp = settings_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2), encoding="utf-8")
    tmp.replace(settings_file)


def prepare_offline(config_dir: Path | None = None) -> Path:
    """Set the offline environment for Ultralytics, ONNX Runtime and OpenVINO.

    Idempotent and cheap after the first call. Must run before ``import ultralytics``.

    Args:
        config_dir: Ultralytics config dir to use; default ``<cache_root>/yolo-config``. An
            existing ``YOLO_CONFIG_DIR`` in the environment wins over the default.

    Returns:
        The config directory in use.

    Example:
        >>> from vision.offline import prepare_offline
        >>> _ = prepare_offline()
        >>> import ultralytics  # doctest: +SKIP
    """
    if config_dir is None:
        env_dir = os.environ.get("YOLO_CONFIG_DIR")
        config_dir = Path(env_dir) if env_dir else cache_root() / "yolo-config"
    config_dir = config_dir.expanduser().resolve()
    # Ultralytics keeps its settings and fonts in the "Ultralytics" folder under the config dir.
    user_dir = config_dir / ULTRALYTICS_SUBDIR
    user_dir.mkdir(parents=True, exist_ok=True)

    font = _matplotlib_font()
    for name in FONT_NAMES:
        target = user_dir / name
        if not target.is_file():
            tmp = user_dir / f".{name}.tmp"
            shutil.copyfile(font, tmp)
            tmp.replace(target)
    _write_settings(user_dir)

    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_OFFLINE"] = "1"
    # Ultralytics' own verbose auto-update/pip checks are skipped offline; keep them explicit.
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    _openvino_opt_out()
    return config_dir


def _openvino_opt_out() -> None:
    # openvino_telemetry reads ~/intel/openvino_telemetry: "0" declines. Setting CI=true would
    # also work but changes other libraries' behaviour, so write the documented consent file,
    # and never overwrite a choice the user already made.
    consent = Path.home() / "intel" / "openvino_telemetry"
    if consent.exists():
        return
    try:
        consent.parent.mkdir(parents=True, exist_ok=True)
        consent.write_text("0", encoding="utf-8")
    except OSError:
        # A read-only home: OpenVINO then finds no consent file and sends nothing without one.
        return


@contextmanager
def tracing_warnings_ignored() -> Iterator[None]:
    """Silence the warnings torch's tracer always prints while Ultralytics exports a model.

    Exports trace the network with ``torch.jit.trace``, which warns on every Python ``bool`` of
    a tensor in the Detect head (a shape check that is constant for a fixed input size) and,
    in torch 2.14, that ``torch.jit.trace`` itself is deprecated. Both are expected; under a
    warnings-as-errors filter the first surfaces as a ``SystemError`` from inside the trace.
    Only the tracer's warnings and that deprecation are silenced; the tests, not these
    warnings, check the exported network against the torch one.
    """
    with warnings.catch_warnings():
        # matched by message, not by torch.jit.TracerWarning: this module never imports torch
        for message in _TRACER_MESSAGES:
            warnings.filterwarnings("ignore", message=message)
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace.* is deprecated",
                                category=FutureWarning)
        yield


def restore_pillow_open() -> None:
    """Put Pillow's own ``PIL.Image.open`` back if Ultralytics replaced it.

    Importing Ultralytics swaps ``PIL.Image.open`` for a wrapper that, on the first file Pillow
    cannot identify, runs a pip requirements check for ``pi-heif`` and imports it; offline and
    without that package a broken photo then reports "No module named 'pi_heif'" instead of
    Pillow's reason, so a batch's records would depend on whether the process had imported
    Ultralytics. Cheap and idempotent; looks the module up without importing it.
    """
    patches = sys.modules.get("ultralytics.utils.patches")
    genuine = getattr(patches, "_image_open", None)
    if genuine is None:
        return
    from PIL import Image

    if Image.open is not genuine:
        Image.open = genuine
