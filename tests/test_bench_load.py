"""benches/bench_load.py end to end, tiny: 2 crews, think 0.2 s, one configuration.

The bench runs as a command (its own PostgreSQL database next to the suite's, dropped after;
its own SeaweedFS; the API in production mode, a job worker, the load generator), writes its
figures as JSON and a capacity page; the test reads both. It asserts what the bench reports
(structure, zero errors, zero lost or duplicated records, every queued job run, the capacity
page's sections), never a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)  # bounded by the bench's own flags: ~1 minute on 2 shared cores
def test_bench_load_runs_end_to_end_tiny(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    dbs = request.getfixturevalue("pg_databases")
    if dbs is None:
        pytest.fail("FIELDOPS_TEST_DATABASE_URL is not set: the load bench needs PostgreSQL "
                    "(make test sets it)", pytrace=False)
    report, capacity = tmp_path / "report.json", tmp_path / "capacity.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benches" / "bench_load.py"), "--crews", "2",
         "--think-s", "0.2", "--seconds", "8", "--grace-s", "60", "--upload-mbps", "20",
         "--planners", "1", "--workers", "1", "--saturate-s", "1", "--ceiling-s", "1", "--demo-months", "0",
         "--scaling-rounds", "2", "--warmup-s", "0.5",
         "--pg-url", dbs.create("load"), "--json", str(report),
         "--write-capacity", str(capacity)],
        cwd=tmp_path, capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(report.read_text())
    (config,) = result["configs"]
    assert config["workers"] == 1
    assert config["flows_completed"] >= 1, done.stdout
    assert config["flows_completed"] == config["flows_started"], done.stdout  # none cut short
    assert config["error_count"] == 0, config["errors"]
    assert config["records"] == {"lost": 0, "duplicated": 0}
    queue = config["queue_after_drain"]
    assert queue.get("pending", 0) + queue.get("running", 0) + queue.get("dead", 0) == 0
    assert queue["media_pending"] == 0
    assert "POST /work-orders/{id}/media" in config["latency"]
    assert "POST /work-orders/{id}/contract/signature" in config["latency"]
    assert config["sat_errors"] == {}
    assert config["per_connection"]["object_bytes"] > 0
    assert set(config["rss_api_mib"]) and set(config["rss_worker_mib"])
    assert [b["workers"] for b in result["bare"]] == [1]
    # the scaling phase: two alternating rounds each of the product and the bare endpoint, the
    # orders its saturations created all found once
    rounds = result["targets"]["rounds"]
    assert [len(rounds["product"]["1"]), len(rounds["bare"]["1"])] == [2, 2]
    assert all(rps > 0 for rps in rounds["product"]["1"] + rounds["bare"]["1"])
    assert result["targets"]["scaling_records"] == {"lost": 0, "duplicated": 0}
    assert result["targets"]["zero_errors"] and result["targets"]["zero_lost_or_duplicated"]
    page = capacity.read_text()
    for needed in ("## Measured in the run", "## Assumptions", "## Sizing", "| province |",
                   "benches/bench_load.py"):
        assert needed in page
    assert "== the issue's targets" in done.stdout
