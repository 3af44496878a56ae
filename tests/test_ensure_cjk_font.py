"""scripts/ensure-cjk-font.sh (run by `make run`): installs fonts-wqy-zenhei only where no
password is asked (root, or `sudo -n`), refreshes apt's lists only when the package is unknown,
and otherwise goes on with a note. Run against fake id/sudo/apt-get/apt-cache commands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ensure-cjk-font.sh"


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "$CALLS"\n{body}\n')
    path.chmod(0o755)


def _run(
    tmp_path: Path, *, uid: int, sudo_ok: bool, package_known: bool, font: bool = False
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    calls.touch()
    _fake(bin_dir, "id", f"echo {uid}")
    _fake(
        bin_dir,
        "sudo",
        'if [ "$1" = "-n" ]; then shift; fi\n' + ('exec "$@"' if sudo_ok else "exit 1"),
    )
    _fake(bin_dir, "apt-cache", "exit 0" if package_known else "exit 100")
    _fake(bin_dir, "apt-get", "exit 0")
    font_path = tmp_path / "wqy-zenhei.ttc"
    if font:
        font_path.write_bytes(b"ttcf")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(calls),
        "ENSURE_CJK_FONT_PATHS": str(font_path),
    }
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    return done, calls.read_text().splitlines()


def test_quiet_and_idle_when_the_font_is_there(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, uid=1000, sudo_ok=False, package_known=True, font=True)
    assert done.returncode == 0
    assert done.stdout == done.stderr == ""
    assert calls == []


def test_without_a_passwordless_sudo_it_goes_on_with_a_note(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, uid=1000, sudo_ok=False, package_known=True)
    assert done.returncode == 0
    assert "STSong-Light" in done.stderr and "fonts-wqy-zenhei" in done.stderr
    assert not [c for c in calls if c.startswith("apt-get")]


def test_passwordless_sudo_installs_after_update_when_the_package_is_unknown(
    tmp_path: Path,
) -> None:
    done, calls = _run(tmp_path, uid=1000, sudo_ok=True, package_known=False)
    assert done.returncode == 0, done.stderr
    apt = [c for c in calls if c.startswith("apt-get")]
    assert apt == ["apt-get update -qq", "apt-get install -y -qq fonts-wqy-zenhei"]
    assert "sudo -n true" in calls


def test_root_installs_without_update_when_the_package_is_known(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, uid=0, sudo_ok=False, package_known=True)
    assert done.returncode == 0, done.stderr
    assert [c for c in calls if c.startswith("apt-get")] == [
        "apt-get install -y -qq fonts-wqy-zenhei"
    ]
    assert not [c for c in calls if c.startswith("sudo")]


def test_the_script_knows_the_same_font_paths_as_the_service() -> None:
    from field_api.contracts.pdf import KNOWN_FONT_PATHS

    text = SCRIPT.read_text()
    for path in KNOWN_FONT_PATHS:
        assert str(path) in text


def test_make_run_calls_it() -> None:
    makefile = (SCRIPT.parents[1] / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/ensure-cjk-font.sh" in run
    assert os.access(SCRIPT, os.X_OK)
