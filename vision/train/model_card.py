"""Model cards: the machine-readable description of a bundled detector.

A model lives in a folder ``models/<name>/`` holding ``card.yaml`` (schema below), the weight
files it names (PyTorch ``.pt``, ONNX, an OpenVINO directory) and a human ``README.md``.

``load_card(path)`` parses and validates the card and, by default, checks the sha256 of every
file listed under ``sha256`` so that a swapped or truncated weight file fails loudly with
:class:`ModelIntegrityError` instead of producing silently wrong detections.

Errors (see vision.errors): ``ModelCardError`` when the card is missing, unreadable or violates
the schema; its subclass ``ModelIntegrityError`` when a listed file is missing or its sha256
does not match.

Pure: imports pydantic and PyYAML only (no ultralytics, no runtime backends).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from vision.errors import ModelCardError, ModelIntegrityError
from vision.hashing import sha256_file

CARD_FILE = "card.yaml"
#: The repository's bundled models folder (``models/`` beside the ``vision`` package).
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

Role = Literal["asset_marker", "defect", "corridor_hazard"]
Kind = Literal["single", "cascade"]
Backend = Literal["torch", "onnx", "openvino", "openvino-int8"]
#: Backend names the command line accepts, ``auto`` first (the fastest the model folder allows).
BACKEND_CHOICES: tuple[str, ...] = ("auto", *get_args(Backend))
BACKEND_HELP = "auto (the fastest the model folder allows), " + ", ".join(get_args(Backend)) + "."

# Stage names the pipeline relies on, per kind of model.
STAGE_NAMES: dict[str, tuple[str, ...]] = {
    "single": ("main",),
    "cascade": ("insulator", "defect"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CardClass(_Strict):
    """One class the pipeline outputs (``id`` is the output class id)."""

    id: int = Field(ge=0)
    name: str = Field(min_length=1)
    role: Role
    severity: int = Field(ge=0, le=5)


class Stage(_Strict):
    """One detector of the pipeline and the settings it runs with."""

    weights: str
    onnx: str | None = None
    openvino: str | None = None
    #: OpenVINO IR quantized to int8 from the f32 one (``vision.train.quantize``), head kept in f32.
    openvino_int8: str | None = None
    imgsz: int = Field(gt=0)
    conf: float = Field(ge=0.0, le=1.0)
    iou: float = Field(gt=0.0, le=1.0)
    #: Output class names this stage's detector predicts, in its own class-id order.
    classes: list[str] = Field(min_length=1)
    #: Cascade defect stage only: square native-resolution tile size and overlap fraction.
    tile_px: int | None = Field(default=None, gt=0)
    tile_overlap: float | None = Field(default=None, ge=0.0, lt=1.0)
    #: First stage only: the long side, in pixels, of the photos it was trained on at ``imgsz``.
    #: Larger photos are sliced into windows of this size (``vision.detect.tiling.slice_plan``)
    #: so objects reach the network at their trained scale; unset: ``2.5 * imgsz``.
    native_px: int | None = Field(default=None, gt=0)

    def window_px(self) -> int:
        """The slice window of a sliced first stage (``native_px``, else ``2.5 * imgsz``)."""
        return self.native_px if self.native_px is not None else round(2.5 * self.imgsz)

    def file_for(self, backend: Backend) -> str:
        """Return the card-relative file (or folder) holding this stage for ``backend``.

        Raises:
            ModelCardError: the card has no export for that backend.
        """
        name = {
            "torch": self.weights, "onnx": self.onnx, "openvino": self.openvino,
            "openvino-int8": self.openvino_int8,
        }[backend]
        if name is None:
            raise ModelCardError(f"this model has no {backend} export for the stage")
        return name


class ClassMetrics(BaseModel):
    """Per-class figures; extra keys (tp, fp, fn, image_recall, ...) are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    precision: float = Field(ge=0.0, le=1.0)
    recall: float = Field(ge=0.0, le=1.0)
    ap50: float = Field(ge=0.0, le=1.0)
    ap50_95: float = Field(ge=0.0, le=1.0)


class Metrics(BaseModel):
    """Pipeline-level metrics per split (``val``, ...) and per-stage Ultralytics val figures."""

    model_config = ConfigDict(extra="allow", frozen=True)

    #: Pipeline-level figures per split name then class name (filled by ``vision evaluate``).
    val: dict[str, ClassMetrics] = Field(default_factory=dict)
    #: Ultralytics' own val per stage then class name, at the stage's training image size.
    stage_val: dict[str, dict[str, ClassMetrics]] = Field(default_factory=dict)


class TrainingInfo(BaseModel):
    """Where the weights came from; extra keys (epochs, imgsz per stage, ...) are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    data: str
    selection: str
    seed: int
    command: str


class ModelCard(_Strict):
    """The parsed ``card.yaml`` of one model folder."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: int = Field(ge=1)
    kind: Kind
    classes: list[CardClass] = Field(min_length=1)
    stages: dict[str, Stage]
    conf_threshold: dict[str, float]
    sha256: dict[str, str]
    training: TrainingInfo
    metrics: Metrics = Field(default_factory=Metrics)
    speed: dict[str, Any] = Field(default_factory=dict)

    _directory: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> ModelCard:
        ids = [c.id for c in self.classes]
        if sorted(ids) != list(range(len(ids))):
            raise ValueError(f"class ids must be 0..{len(ids) - 1} without gaps, got {ids}")
        names = {c.name for c in self.classes}
        if len(names) != len(self.classes):
            raise ValueError("class names must be unique")
        expected = STAGE_NAMES[self.kind]
        if set(self.stages) != set(expected):
            raise ValueError(f"a {self.kind} model needs exactly the stages {list(expected)}")
        for stage_name, stage in self.stages.items():
            unknown = set(stage.classes) - names
            if unknown:
                raise ValueError(f"stage {stage_name!r} names unknown classes {sorted(unknown)}")
        if self.kind == "cascade" and self.stages["defect"].tile_px is None:
            raise ValueError("the cascade's defect stage needs tile_px")
        unknown_thr = set(self.conf_threshold) - names
        if unknown_thr:
            raise ValueError(f"conf_threshold names unknown classes {sorted(unknown_thr)}")
        for stage_name, stage in self.stages.items():
            if stage.weights not in self.sha256:
                raise ValueError(f"sha256 lacks the weights of stage {stage_name!r}")
        for key, digest in self.sha256.items():
            if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
                raise ValueError(f"sha256 of {key!r} is not 64 lowercase hex digits")
        return self

    @property
    def directory(self) -> Path:
        """Folder the card was loaded from (weight paths are relative to it)."""
        if self._directory is None:
            raise ModelCardError("this card was not loaded from a folder")
        return self._directory

    @property
    def stage_order(self) -> tuple[str, ...]:
        """Stage names in the order the pipeline runs them (e.g. insulator, then defect)."""
        return STAGE_NAMES[self.kind]

    def class_by_name(self, name: str) -> CardClass:
        """Return the output class called ``name``.

        Raises:
            KeyError: no such class.
        """
        for cls in self.classes:
            if cls.name == name:
                return cls
        raise KeyError(name)

    def threshold(self, class_name: str) -> float:
        """Confidence threshold chosen on val for ``class_name`` (falls back to its stage's)."""
        if class_name in self.conf_threshold:
            return self.conf_threshold[class_name]
        for stage in self.stages.values():
            if class_name in stage.classes:
                return stage.conf
        raise KeyError(class_name)

    def stage_path(self, stage: str, backend: Backend = "torch") -> Path:
        """Absolute path of ``stage``'s weights for ``backend`` (a file, or OpenVINO's folder).

        Raises:
            ModelCardError: unknown stage, missing export, or a card not loaded from disk.
        """
        if stage not in self.stages:
            raise ModelCardError(f"unknown stage {stage!r}; stages: {list(self.stages)}")
        return self.directory / self.stages[stage].file_for(backend)


def weight_files(folder: Path, names: Iterable[str]) -> list[str]:
    """Expand card-relative weight names into the files to hash.

    A plain file stays as is; an OpenVINO folder expands to its ``.xml`` and ``.bin`` files
    (``folder/x.xml``), the two files that define the network.

    Example:
        >>> weight_files(Path("models/m"), ["a.pt"])
        ['a.pt']
    """
    out: list[str] = []
    for name in names:
        target = folder / name
        if target.is_dir():
            members = sorted(p for p in target.iterdir() if p.suffix in {".xml", ".bin"})
            if not members:
                raise ModelCardError(f"{target} holds no OpenVINO .xml/.bin files")
            out.extend(f"{name}/{p.name}" for p in members)
        else:
            out.append(name)
    return out


def hash_weights(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """Return ``{relative name: sha256}`` for the given weights under ``folder``."""
    return {rel: sha256_file(folder / rel) for rel in weight_files(folder, names)}


def verify_files(
    folder: Path, expected: Mapping[str, str], only: Iterable[str] | None = None
) -> None:
    """Check the sha256 of listed files under ``folder``.

    Args:
        folder: the model folder.
        expected: ``{relative path: sha256}`` as in the card.
        only: restrict the check to these keys, or to keys under these folder names
            (e.g. ``["defect_openvino_model"]``); ``None`` checks them all.

    Raises:
        ModelIntegrityError: a file is missing or its digest differs.
    """
    keys = list(expected)
    if only is not None:
        wanted = list(only)
        keys = [k for k in keys if any(k == w or k.startswith(w.rstrip("/") + "/") for w in wanted)]
    for key in keys:
        path = folder / key
        if not path.is_file():
            raise ModelIntegrityError(f"model file {path} is missing")
        actual = sha256_file(path)
        if actual != expected[key]:
            raise ModelIntegrityError(
                f"model file {path} does not match its card: sha256 {actual} != {expected[key]}"
            )


def load_card(path: Path | str, *, verify: bool = True) -> ModelCard:
    """Load and validate a model card, checking every listed file's sha256.

    Args:
        path: the model folder or its ``card.yaml``.
        verify: check sha256 of every file under ``sha256`` (default); turn off only for tools
            that rewrite the card.

    Returns:
        The validated card; ``card.directory`` is the model folder.

    Raises:
        ModelCardError: the card is missing, not YAML, or breaks the schema.
        ModelIntegrityError: a weight file is missing or does not match its sha256.

    Example:
        >>> card = load_card("models/cplid-cascade")  # doctest: +SKIP
        >>> card.stage_path("defect", "openvino")  # doctest: +SKIP
    """
    card_path = Path(path)
    if card_path.is_dir():
        card_path = card_path / CARD_FILE
    if not card_path.is_file():
        raise ModelCardError(f"no model card at {card_path}")
    try:
        raw = yaml.safe_load(card_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelCardError(f"{card_path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelCardError(f"{card_path} must hold a mapping")
    try:
        card = ModelCard.model_validate(raw)
    except ValidationError as exc:
        raise ModelCardError(f"{card_path} breaks the model card schema:\n{exc}") from exc
    card._directory = card_path.parent.resolve()
    if verify:
        verify_files(card._directory, card.sha256)
    return card


def resolve_model(name_or_path: str, models_dir: Path = DEFAULT_MODELS_DIR) -> Path:
    """Return the folder of a model given its name (under ``models_dir``) or a path.

    Raises:
        ModelCardError: neither a folder with a card nor a known model name.
    """
    candidate = Path(name_or_path)
    for folder in (candidate, models_dir / name_or_path):
        if (folder / CARD_FILE).is_file():
            return folder
    known = sorted(p.parent.name for p in models_dir.glob(f"*/{CARD_FILE}"))
    raise ModelCardError(f"unknown model {name_or_path!r}; bundled models: {known}")


def with_thresholds(card: ModelCard, thresholds: Mapping[str, float], how: str) -> ModelCard:
    """Return ``card`` with new per-class output thresholds (e.g. chosen on val).

    Stages after a cascade's first run at the lowest threshold of their classes, so nothing
    they report is cut before the output filter. A cascade's first stage keeps its ``conf``:
    it is the gate deciding where the next stage looks, not an output threshold. ``how``
    says how the thresholds were chosen; it is recorded in ``training.threshold_selection``.
    """
    unknown = set(thresholds) - {c.name for c in card.classes}
    if unknown:
        raise ModelCardError(f"thresholds for classes the card does not have: {sorted(unknown)}")
    conf = {**card.conf_threshold, **{k: round(float(v), 4) for k, v in thresholds.items()}}
    stages = dict(card.stages)
    gate = card.stage_order[0] if card.kind == "cascade" else None
    for name, stage in card.stages.items():
        if name != gate:
            lowest = min(conf.get(c, stage.conf) for c in stage.classes)
            stages[name] = stage.model_copy(update={"conf": lowest})
    training = card.training.model_copy(update={"threshold_selection": how})
    updated = card.model_copy(
        update={"conf_threshold": conf, "stages": stages, "training": training}
    )
    updated._directory = card._directory
    return updated


def with_val_metrics(
    card: ModelCard, classes: Mapping[str, Mapping[str, Any]], *, key: str = "val"
) -> ModelCard:
    """Return ``card`` with ``metrics.<key>`` set from ``vision evaluate``'s per-class results.

    Each class keeps precision, recall, AP50, AP50-95, TP/FP/FN (and image recall where
    reported) at the card's threshold, which is recorded beside them as ``conf``. ``key`` is
    ``val`` for the default backend's figures, or e.g. ``val_openvino_f32`` for another's.
    """
    val: dict[str, ClassMetrics] = {}
    for name, row in classes.items():
        if row.get("recall") is None:  # no ground truth of this class in the split
            continue
        kept = {
            k: row[k]
            for k in ("tp", "fp", "fn", "image_recall", "max_f1")
            if row.get(k) is not None
        }
        val[name] = ClassMetrics(
            precision=round(float(row["precision"]), 4),
            recall=round(float(row["recall"]), 4),
            ap50=round(float(row["ap50"] or 0.0), 4),
            ap50_95=round(float(row["ap50_95"] or 0.0), 4),
            conf=card.threshold(name),
            **kept,
        )
    metrics = card.metrics.model_copy(update={key: val})
    updated = card.model_copy(update={"metrics": metrics})
    updated._directory = card._directory
    return updated


def dump_card(card: ModelCard, folder: Path) -> Path:
    """Write ``card`` as ``folder/card.yaml`` atomically (temp file then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / CARD_FILE
    tmp = folder / f".{CARD_FILE}.tmp"
    data = card.model_dump(mode="json", exclude_none=True)
    tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(target)
    return target


def _metrics_table(per_class: Mapping[str, ClassMetrics]) -> list[str]:
    rows = [
        "| class | threshold | precision | recall | AP50 | AP50-95 |",
        "|---|---|---|---|---|---|",
    ]
    for cls, m in per_class.items():
        extra = m.model_extra or {}
        conf = extra.get("conf", "")
        rows.append(
            f"| {cls} | {conf} | {m.precision:.3f} | {m.recall:.3f} "
            f"| {m.ap50:.3f} | {m.ap50_95:.3f} |"
        )
    return rows


def render_readme(card: ModelCard, *, compared: Iterable[ModelCard] = (), notes: str = "") -> str:
    """Render the human model card (README.md) from a card and the variants it was compared to.

    Every figure comes from the card: the speed section from ``speed`` (``pipeline_bench`` is
    written by ``benches/bench_inference.py --write-card``), the rest from ``metrics``.

    Args:
        card: the bundled model's card.
        compared: cards of the other variants trained for the comparison (figures only).
        notes: free markdown appended at the end (caveats, pending figures).
    """
    lines = [
        f"# Model card: {card.name} (version {card.version})",
        "",
        f"Kind: **{card.kind}**. Stages, in order: "
        + ", ".join(f"`{s}`" for s in card.stage_order)
        + ".",
        "",
        *_classes_section(card),
        *_stages_section(card),
        *_training_section(card),
        *_validation_section(card, compared),
        *speed_section(card),
        *_integrity_section(card),
    ]
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines)


def _classes_section(card: ModelCard) -> list[str]:
    lines = [
        "## Classes",
        "",
        "| id | name | role | severity | output threshold |",
        "|---|---|---|---|---|",
    ]
    for c in card.classes:
        lines.append(f"| {c.id} | {c.name} | {c.role} | {c.severity} | {card.threshold(c.name)} |")
    return lines


def _stages_section(card: ModelCard) -> list[str]:
    lines = [
        "",
        "## Stages",
        "",
        "| stage | input | tiles | conf | NMS IoU | files |",
        "|---|---|---|---|---|---|",
    ]
    for name in card.stage_order:
        s = card.stages[name]
        tiles = f"{s.tile_px} px, overlap {s.tile_overlap}" if s.tile_px else "full frame"
        files = ", ".join(
            f"`{f}`" for f in (s.weights, s.onnx, s.openvino, s.openvino_int8) if f
        )
        lines.append(f"| {name} | {s.imgsz} | {tiles} | {s.conf} | {s.iou} | {files} |")
    return lines


def _training_section(card: ModelCard) -> list[str]:
    t = card.training
    extra = t.model_extra or {}
    return [
        "",
        "## Data and training",
        "",
        f"- Trained on {t.data}; `best.pt` selected by Ultralytics' val fitness on {t.selection}.",
        f"- Seed {t.seed}; base: {extra.get('base_model', 'yolo11n.yaml')}.",
        f"- Epochs per stage: {extra.get('epochs', {})}; wall-clock budget per stage (hours): "
        f"{extra.get('hours_per_stage')}.",
        "- Output thresholds: "
        + str(extra.get("threshold_selection", "each stage's max-F1 on its own val"))
        + ".",
        "",
        "Command:",
        "",
        "```",
        t.command,
        "```",
        "",
    ]


def _validation_section(card: ModelCard, compared: Iterable[ModelCard]) -> list[str]:
    lines = [
        "## Validation figures",
        "",
        "Pipeline: `fieldops vision evaluate` on the val split, IoU 0.5 matching at the output "
        "thresholds above (AP over all scores). Per stage: Ultralytics' own val of each "
        "detector on its own input (full frames, or for the defect stage the tiles cut along "
        "ground-truth insulators), precision and recall at the max-F1 threshold.",
        "",
    ]
    for other in (card, *compared):
        lines += _variant_figures(other)
    return lines


def _variant_figures(card: ModelCard) -> list[str]:
    extra = card.training.model_extra or {}
    lines = [f"### {card.name} ({card.kind}, epochs {extra.get('epochs', {})})", ""]
    if card.metrics.val:
        lines += ["Pipeline on val:", "", *_metrics_table(card.metrics.val), ""]
    f32 = (card.metrics.model_extra or {}).get("val_openvino_f32")
    if f32:
        lines += [
            "The same pipeline with the f32 OpenVINO networks (before int8 "
            "quantization), same thresholds:",
            "",
            *_metrics_table({k: ClassMetrics.model_validate(v) for k, v in f32.items()}),
            "",
        ]
    else:
        lines += ["Pipeline on val: pending `fieldops vision evaluate`.", ""]
    for stage_name, per_class in card.metrics.stage_val.items():
        lines += [f"Stage `{stage_name}` (Ultralytics val):", "", *_metrics_table(per_class), ""]
    return lines


def speed_section(card: ModelCard) -> list[str]:
    """The README's ``## Speed`` section, rendered from ``card.speed`` only (nothing typed).

    ``speed.pipeline_bench`` (recorded by ``benches/bench_inference.py --write-card``) becomes
    a table under the machine, date and command it was measured with; any other speed entries
    follow as YAML. No section when the card records no speed.
    """
    if not card.speed:
        return []
    lines = ["## Speed", ""]
    bench = card.speed.get("pipeline_bench")
    if isinstance(bench, Mapping):
        lines += [
            f"Recorded by `benches/bench_inference.py --write-card` on {bench.get('machine')}, "
            f"{bench.get('date')}:",
            "",
            f"`{bench.get('command')}`",
            "",
            "| figure | value |",
            "|---|---|",
            *(f"| {k} | {_cell(v)} |" for k, v in bench.items() if k not in BENCH_PROVENANCE),
            "",
        ]
    rest = {k: v for k, v in card.speed.items() if k != "pipeline_bench"}
    if rest:
        lines += ["```", yaml.safe_dump(rest, sort_keys=False).strip(), "```", ""]
    return lines


def _cell(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def _integrity_section(card: ModelCard) -> list[str]:
    return [
        "## Integrity",
        "",
        "`load_card()` checks the sha256 of every file below; a mismatch raises "
        "ModelIntegrityError.",
        "",
        "| file | sha256 |",
        "|---|---|",
        *(f"| `{k}` | `{v}` |" for k, v in card.sha256.items()),
        "",
        "## Data citation",
        "",
        "CPLID (Chinese Power Line Insulator Dataset), State Grid Corporation of China UAV photos: "
        'Tao, Zhang, Wang, Liu, Zhang, Xu, "Detection of Power Line Insulator Defects Using '
        'Aerial Images Analyzed With Convolutional Neural Networks", IEEE Trans. Systems, Man, '
        "and Cybernetics: Systems, 2018.",
        "",
    ]


# ---------------------------------------------------------------------- recorded speed figures

#: The entries of ``speed.pipeline_bench`` that say where, when and how it was measured.
BENCH_PROVENANCE = ("machine", "date", "command")

# An absolute or home-relative path of some machine: ``/work/...``, ``/home/...``, ``~/...``,
# ``C:\\...`` at the start of a word.
_MACHINE_PATH = re.compile(r"""(?:^|(?<=[\s"'`=(]))(?:~?/[\w.-]+/|[A-Za-z]:\\)""")


def machine_paths(text: str) -> list[str]:
    """The absolute or home paths in ``text`` (a card must name none: it travels).

    Example:
        >>> machine_paths("--data /work/shared/cplid --model cplid-cascade")
        ['/work/']
        >>> machine_paths("benches/bench_inference.py <dataset>/val/images 12 ms/photo")
        []
    """
    return _MACHINE_PATH.findall(text)


def with_pipeline_bench(card: ModelCard, figures: Mapping[str, Any]) -> ModelCard:
    """Return ``card`` with ``speed.pipeline_bench`` replaced by ``figures``.

    Raises:
        ModelCardError: ``figures`` lacks the machine, date or command, or names a path of
            this machine (use repository-relative paths or ``<dataset>`` placeholders).
    """
    missing = [k for k in BENCH_PROVENANCE if not figures.get(k)]
    if missing:
        raise ModelCardError(f"speed figures need {', '.join(missing)}")
    found = machine_paths(yaml.safe_dump(dict(figures), sort_keys=False))
    if found:
        raise ModelCardError(f"speed figures name a path of this machine: {found}")
    updated = card.model_copy(update={"speed": {**card.speed, "pipeline_bench": dict(figures)}})
    updated._directory = card._directory
    return updated


def replace_speed_section(readme: str, card: ModelCard) -> str:
    """``readme`` with its ``## Speed`` section rendered again from ``card`` (the rest kept)."""
    section = "\n".join(speed_section(card))
    start = readme.find("\n## Speed\n")
    if start < 0:
        start = readme.find("\n## Integrity\n")
        return readme[: start + 1] + section + "\n" + readme[start + 1 :] if start >= 0 else readme
    end = readme.find("\n## ", start + 1)
    return readme[: start + 1] + section + (readme[end:] if end >= 0 else "\n")


def record_pipeline_bench(folder: Path, figures: Mapping[str, Any]) -> ModelCard:
    """Write ``figures`` into ``folder``'s card.yaml and re-render its README's speed section.

    Called by ``benches/bench_inference.py --write-card``; the only writer of
    ``speed.pipeline_bench``.
    """
    card = with_pipeline_bench(load_card(folder), figures)
    dump_card(card, folder)
    readme = folder / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8")
        readme.write_text(replace_speed_section(text, card), encoding="utf-8")
    return card
