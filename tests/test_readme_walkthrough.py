"""The README's "First connection in ten minutes", replayed: so the README cannot rot.

The shell blocks between the README's walk-through markers run, in order and in one bash, against
a live `fieldops serve` on a fresh SQLite database after `fieldops db upgrade` and `fieldops demo
load` (what `make run` does); the order they create must end energised with a signed contract
that the service verifies. A second test keeps the README and the design notes free of links that
leave the repository or point at files it does not have.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FIELDOPS = [sys.executable, "-m", "fieldops.cli"]
CREW_TOKEN = "fo_demo_crew_a_000000000000000"
START = "<!-- walkthrough:start -->"
END = "<!-- walkthrough:end -->"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def walkthrough_blocks(text: str) -> list[str]:
    """The ```sh blocks between the walk-through markers, in order."""
    assert text.count(START) == 1 and text.count(END) == 1, "walk-through markers missing"
    section = text[text.index(START) : text.index(END)]
    return SH_BLOCK.findall(section)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`make run` on a fresh database (every file under tmp_path): migrate, demo, serve."""
    var = tmp_path / "var"
    env = {
        **os.environ,
        "FIELDOPS_DATABASE_URL": f"sqlite:///{var}/fieldops.db",
        "FIELDOPS_MEDIA_DIR": str(var / "media"),
        "FIELDOPS_SIGNING_KEY_PATH": str(var / "keys" / "contract-signing.key"),
        "FIELDOPS_AUDIT_KEY_PATH": str(var / "keys" / "audit-chain.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH": str(var / "keys" / "audit-checkpoint.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_DIR": str(var / "audit-checkpoints"),
        "FIELDOPS_INSPECTIONS_DIR": str(var / "inspections"),
    }
    env.pop("FIELDOPS_ENV", None)  # the demo tokens and GET /dev/sms exist in development only
    var.mkdir()
    for args in (["db", "upgrade"], ["demo", "load"]):
        done = subprocess.run(
            [*FIELDOPS, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*FIELDOPS, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:  # wait until the server accepts connections (bounded)
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
        yield url, env
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.mark.timeout(600)  # migrate + the demo's months of history + the walk-through, 2 cores
def test_the_readme_walkthrough_connects_a_customer(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = served
    blocks = walkthrough_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 10, "the walk-through lost its steps"
    script = "\n".join(blocks)
    venv = Path(sys.executable).parent.parent  # the walk-through's VENV (`.venv` after make run)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,  # the README says: at the repository root
        env={**env, "BASE": url, "VENV": str(venv), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    last = done.stdout.strip().splitlines()[-1]
    ended = re.fullmatch(r"order (\d+): energised", last)
    assert ended is not None, done.stdout
    assert re.search(r"^VALID: .*contract\.pdf: valid: contract for order", done.stdout, re.M)

    # Independently of what the script printed: the order, its contract and the signed file.
    order_id = int(ended.group(1))
    crew = {"Authorization": f"Bearer {CREW_TOKEN}"}
    order = httpx.get(f"{url}/work-orders/{order_id}", headers=crew).json()
    assert order["stage"] == "energised"
    contract = httpx.get(f"{url}/work-orders/{order_id}/contract", headers=crew).json()
    assert contract["status"] == "signed"
    pdf = httpx.get(f"{url}/work-orders/{order_id}/contract/pdf", headers=crew)
    assert pdf.status_code == 200
    verdict = httpx.post(
        f"{url}/contracts/verify", files={"file": ("c.pdf", pdf.content, "application/pdf")}
    ).json()
    assert verdict["valid"] is True
    assert verdict["record"]["order_id"] == str(order_id)


def test_walkthrough_blocks_are_read_between_the_markers_only() -> None:
    text = "\n".join(
        [
            "```sh\necho before\n```",
            START,
            "```sh\necho one\n```",
            "```text\nanswer\n```",
            "```sh\necho two\n```",
            END,
            "```sh\necho after\n```",
        ]
    )
    assert walkthrough_blocks(text) == ["echo one\n", "echo two\n"]


# Markdown links and images whose target is a path, not a URL or an anchor.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_the_readme_and_the_notes_link_only_inside_the_repository() -> None:
    documents = [README, ROOT / "DEVELOPERS.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    problems: list[str] = []
    for doc in documents:
        text = doc.read_text(encoding="utf-8")
        # a guard, nothing reads it: the workplace's shared folder is not in a clone
        if "../shared" in text:
            problems.append(f"{doc.relative_to(ROOT)} mentions ../shared")
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.is_relative_to(ROOT):
                problems.append(f"{doc.relative_to(ROOT)}: {target} leaves the repository")
            elif not path.exists():
                problems.append(f"{doc.relative_to(ROOT)}: {target} does not exist")
    assert problems == []
