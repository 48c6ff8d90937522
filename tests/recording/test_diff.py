"""`warroom diff`: two real runs, one against a healthy loopback server and one after it broke."""

from __future__ import annotations

import json
import time
from pathlib import Path

from console.engine.compare import figures
from console.engine.recorder import Recorder
from console.engine.store import Store
from probes.samples import Sample
from tests.lab.servers import MisbehavingHTTPServer
from tests.recording.helpers import pools_sample
from tests.unit.test_cli import warroom


def test_diff_of_a_healthy_and_a_broken_run(tmp_path: Path) -> None:
    server = MisbehavingHTTPServer().start()
    url = server.url("/ok")
    tcp_target = f"127.0.0.1:{server.port}"
    try:
        healthy = warroom("--json", "--duration", "2.5", "--record", str(tmp_path / "before.jsonl.zst"), url,
                          tcp_target)
    finally:
        server.stop()  # the fault: nothing listens on the port any more
    broken = warroom("--json", "--duration", "2.5", "--record", str(tmp_path / "after.jsonl.zst"), url, tcp_target)
    assert healthy.returncode == 0 and broken.returncode == 0

    result = warroom("diff", str(tmp_path / "before.jsonl.zst"), str(tmp_path / "after.jsonl.zst"), "--json")
    assert result.returncode == 0, result.stderr
    diff = json.loads(result.stdout)
    rows = {(r["layer"], r["target"]): r for r in diff["targets"]}
    http = rows[("http", url)]["metrics"]
    assert http["success_pct"]["before"] == 100.0 and http["success_pct"]["after"] == 0.0
    assert http["success_pct"]["change"] == -100.0
    assert http["p50_ms"]["before"] is not None and http["p50_ms"]["after"] is None
    tcp = rows[("tcp", tcp_target)]
    assert tcp["metrics"]["loss_pct"]["change"] == 100.0
    assert tcp["errors"]["refused"]["before"] == 0 and tcp["errors"]["refused"]["after"] >= 2

    text = warroom("diff", str(tmp_path / "before.jsonl.zst"), str(tmp_path / "after.jsonl.zst"))
    assert text.returncode == 0
    block = text.stdout.split(f"{url} http")[1].split("\n\n")[0]
    assert "success" in block and "100.0%" in block and "-100.0 pp" in block


def test_diff_figures_are_the_stores_figures(tmp_path: Path) -> None:
    """p50/p99 and loss in a diff are Store.stats over the whole recording, as the console computes them."""
    now = time.time() - 600
    samples = [Sample("tcp", "127.0.0.1:1", now + i, {"rtt_ms": float(i % 17)} if i % 10 else {},
                      error=None if i % 10 else "timeout", message=None if i % 10 else "no answer") for i in range(200)]
    store = Store()
    for sample in samples:
        store.add(sample)
    stats = store.stats(("local", "tcp", "127.0.0.1:1"), seconds=None)
    got = figures(samples).layers[("local", "tcp", "127.0.0.1:1")]
    assert (got.p50_ms, got.p99_ms, got.loss_pct, got.samples) == (stats.p50, stats.p99, stats.loss_pct, stats.count)
    assert got.errors == {"timeout": 20} and got.success_pct == 90.0


def test_pool_use_and_exit_statuses(tmp_path: Path) -> None:
    now = time.time() - 600
    for name, used in (("a", 4), ("b", 10)):
        recorder = Recorder(tmp_path / f"{name}.jsonl")
        for i in range(20):
            recorder(pools_sample(now + i, i, used=used))
        recorder.close()
    result = warroom("diff", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "--json")
    assert result.returncode == 0
    pool = json.loads(result.stdout)["pools"][0]
    assert pool["pool"] == "orders-db"
    assert pool["metrics"]["peak_util_pct"] == {"before": 40.0, "after": 100.0, "change": 60.0}

    other = tmp_path / "other.jsonl"
    other.write_text(Sample("tcp", "127.0.0.1:2", now, {"rtt_ms": 1.0}).to_json() + "\n")
    nothing_in_common = warroom("diff", str(tmp_path / "a.jsonl"), str(other))
    assert nothing_in_common.returncode == 1 and "nothing to compare" in nothing_in_common.stderr
    missing = warroom("diff", str(tmp_path / "a.jsonl"), str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such file" in missing.stderr
