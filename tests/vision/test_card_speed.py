"""Speed figures in a model card come from the bench's record, and a card names no machine path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from vision.errors import ModelCardError
from vision.train.model_card import (
    DEFAULT_MODELS_DIR,
    hash_weights,
    load_card,
    machine_paths,
    record_pipeline_bench,
    render_readme,
    replace_speed_section,
    with_pipeline_bench,
)
from vision.train.training import scrub_export_description


def _figures(**changes: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "machine": "Test CPU, 2 CPUs, Linux x86_64",
        "date": "2026-01-02",
        "command": "benches/bench_inference.py <dataset>/val/images --model tiny --write-card",
        "ours_ms_per_photo": 12.3,
        "speed_up_wall": 4.56,
        "boxes_per_round": {"ours": 7, "baseline": 7},
    }
    figures.update(changes)
    return figures


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "main.pt").write_bytes(b"weights")
    card = {
        "name": "tiny", "version": 1, "kind": "single",
        "classes": [{"id": 0, "name": "defect", "role": "defect", "severity": 3}],
        "stages": {"main": {"weights": "main.pt", "imgsz": 320, "conf": 0.3, "iou": 0.5,
                            "classes": ["defect"]}},
        "conf_threshold": {"defect": 0.35},
        "sha256": hash_weights(folder, ["main.pt"]),
        "training": {"data": "d", "selection": "v", "seed": 0, "command": "fieldops vision"},
        "speed": {"note": "stage figures from Ultralytics val"},
    }
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return folder


@pytest.mark.parametrize("name", ["card.yaml", "README.md"])
def test_the_bundled_card_names_no_path_of_a_machine(name: str) -> None:
    for folder in sorted(p for p in DEFAULT_MODELS_DIR.iterdir() if p.is_dir()):
        text = (folder / name).read_text(encoding="utf-8")
        assert machine_paths(text) == [], f"{folder.name}/{name}"


def test_no_text_file_of_a_bundled_model_names_a_path_of_a_machine() -> None:
    texts = sorted(
        p for p in DEFAULT_MODELS_DIR.rglob("*") if p.suffix in {".yaml", ".md", ".json"}
    )
    assert any(p.name == "metadata.yaml" for p in texts)  # the exports' metadata is read too
    for path in texts:
        assert machine_paths(path.read_text(encoding="utf-8")) == [], str(path)


def test_an_exports_description_names_the_dataset_not_the_machine(tmp_path: Path) -> None:
    metadata = tmp_path / "metadata.yaml"
    metadata.write_text(
        "description: Ultralytics YOLO11n model trained on /root/.cache/x/datasets/frame-insulator/data.yaml\n"
        "author: Ultralytics\n",
        encoding="utf-8",
    )
    scrub_export_description(metadata)
    assert metadata.read_text(encoding="utf-8") == (
        "description: Ultralytics YOLO11n model trained on <dataset>/frame-insulator/data.yaml\n"
        "author: Ultralytics\n"
    )


def test_the_bundled_speed_figures_carry_machine_date_and_command() -> None:
    card = load_card(DEFAULT_MODELS_DIR / "cplid-cascade", verify=False)
    bench = card.speed["pipeline_bench"]
    assert {"machine", "date", "command"} <= set(bench)
    assert bench["command"].startswith("benches/bench_inference.py ")


def test_machine_paths_finds_absolute_and_home_paths_only() -> None:
    assert machine_paths("--data /work/shared/cplid") == ["/work/"]
    assert machine_paths("in ~/data/x and '/home/me/y'") == ["~/data/", "/home/"]
    assert machine_paths("benches/bench_inference.py <dataset>/val/images 9 ms/photo") == []


def test_the_readme_speed_section_is_rendered_from_the_recorded_figures(model_dir: Path) -> None:
    card = load_card(model_dir)

    one = render_readme(with_pipeline_bench(card, _figures()))
    other = render_readme(with_pipeline_bench(card, _figures(ours_ms_per_photo=99.9)))

    assert "on Test CPU, 2 CPUs, Linux x86_64, 2026-01-02" in one
    assert "`benches/bench_inference.py <dataset>/val/images --model tiny --write-card`" in one
    assert "| ours_ms_per_photo | 12.3 |" in one
    assert "| boxes_per_round | ours 7, baseline 7 |" in one
    assert "| ours_ms_per_photo | 99.9 |" in other and "12.3" not in other
    assert "stage figures from Ultralytics val" in one  # other speed entries are kept


@pytest.mark.parametrize(
    "figures",
    [
        _figures(command="benches/bench_inference.py /work/shared/cplid/val/images"),
        _figures(machine=""),
        {k: v for k, v in _figures().items() if k != "date"},
    ],
    ids=["machine-path", "no-machine", "no-date"],
)
def test_figures_with_a_machine_path_or_without_provenance_are_refused(
    model_dir: Path, figures: dict[str, Any]
) -> None:
    with pytest.raises(ModelCardError):
        with_pipeline_bench(load_card(model_dir), figures)


def test_record_writes_the_card_and_only_the_readme_speed_section(model_dir: Path) -> None:
    readme = model_dir / "README.md"
    readme.write_text(render_readme(load_card(model_dir), notes="Keep me."), encoding="utf-8")
    before = readme.read_text(encoding="utf-8")

    record_pipeline_bench(model_dir, _figures())

    stored = yaml.safe_load((model_dir / "card.yaml").read_text(encoding="utf-8"))
    assert stored["speed"]["pipeline_bench"] == _figures()
    assert stored["speed"]["note"] == "stage figures from Ultralytics val"
    after = readme.read_text(encoding="utf-8")
    assert "| ours_ms_per_photo | 12.3 |" in after
    assert after.split("## Speed")[0] == before.split("## Speed")[0]
    assert after.split("## Integrity")[1] == before.split("## Integrity")[1]
    assert after == replace_speed_section(before, load_card(model_dir))
