"""Sweeps on Dask distributed: a real LocalCluster of two worker processes, started once for the module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from goheap.sweep.cluster import DaskRunner
from goheap.sweep.driver import run_sweep
from goheap.sweep.results import ResultsDir
from goheap.sweep.run import MEASURED
from goheap.sweep.spec import build_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runner():
    """The sweep's own default: a LocalCluster of single-threaded worker processes (two here)."""
    r = DaskRunner(workers=2)
    yield r
    r.close()


def comparable(rows):
    return {r["run_id"]: {k: v for k, v in r.items() if k not in MEASURED} for r in rows}


def test_a_2x2_grid_on_two_workers_gives_the_serial_rows(runner, traces, tmp_path):
    spec = build_spec(traces=[str(traces["good"])], gogc=["50", "200"], mode=["gc", "free"], clock="virtual")
    serial = run_sweep(spec, tmp_path / "serial", serial=True)
    dask = run_sweep(spec, tmp_path / "dask", runner=runner)
    assert (serial.ok, dask.ok, dask.failed) == (4, 4, 0)
    a, b = ResultsDir(tmp_path / "serial"), ResultsDir(tmp_path / "dask")
    rows_a, rows_b = pq.read_table(a.path / "results.parquet").to_pylist(), pq.read_table(b.path / "results.parquet").to_pylist()
    assert comparable(rows_a) == comparable(rows_b)
    assert {r["num_gc"] for r in rows_b} != {0} and len({r["num_gc"] for r in rows_b}) > 1  # the grid made a difference
    workers = {r["worker"] for r in rows_b}
    assert all(w.split(":")[1] != str(os.getpid()) for w in workers)  # ran in the workers
    # each worker loaded the compiled runtime once, however many runs it had
    loads = runner.client.run(lambda: __import__("goheap.sweep.run", fromlist=["_WARM"])._WARM["loaded"])
    assert sorted(loads.values()) == [1, 1]


def test_a_failing_run_is_recorded_and_the_others_finish(runner, traces, tmp_path):
    spec = build_spec(traces=[str(traces["bad"]), str(traces["good"])], gogc=["100", "off"], clock="virtual")
    # the scheduler by address: an existing cluster, left running
    outcome = run_sweep(spec, tmp_path / "out", scheduler=runner.cluster.scheduler_address)
    assert (outcome.ok, outcome.failed, outcome.interrupted) == (2, 2, "")
    assert "Dask cluster at tcp://" in outcome.where
    rows = {(r["source"], r["gogc"]): r for r in pq.read_table(tmp_path / "out" / "results.parquet").to_pylist()}
    bad = rows[("bad.trace.npz", 100)]
    assert bad["status"] == "failed" and bad["error"].startswith("ReplayError: event 0") and bad["num_gc"] is None
    assert rows[("good.trace.npz", -1)]["status"] == "ok" and rows[("good.trace.npz", -1)]["num_gc"] == 0  # GOGC=off
    record = next(r for r in ResultsDir(tmp_path / "out").records() if r["row"]["status"] == "failed")
    assert "Traceback" in record["traceback"]
    assert runner.client.status == "running"  # the cluster is the caller's: still up


def test_runs_announce_their_start(runner, traces):
    spec = build_spec(traces=[str(traces["good"])], gogc=["100", "300"], clock="virtual")
    started = []
    records = list(runner.run(spec.runs(), spec.traces, started.append))
    deadline = time.monotonic() + 5
    while len(started) < 2 and time.monotonic() < deadline:  # events travel apart from results
        time.sleep(0.05)
    assert sorted(started) == sorted(r.run_id for r in records)


def test_ctrl_c_stops_the_sweep_and_its_workers_and_keeps_what_finished(traces, tmp_path):
    """Ctrl-C at a terminal signals the whole process group: the sweep and its worker processes."""
    goheap = Path(sys.executable).with_name("goheap")
    out = tmp_path / "out"
    p = subprocess.Popen(
        [str(goheap), "sweep", "--trace", str(traces["good"]), "--gogc", ",".join(str(g) for g in range(10, 400, 10)),
         "--workers", "2", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        while not p.stderr.readline().startswith("[2/"):
            assert p.poll() is None, p.stderr.read()
        os.killpg(p.pid, signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, stderr
    assert "interrupted" in stderr and "--resume continues" in stderr and "Traceback" not in stderr, stderr
    kept = pq.read_table(out / "results.parquet").to_pylist()
    assert 2 <= len(kept) < 39 and {r["status"] for r in kept} == {"ok"}
    assert len(list((out / "runs").glob("*.json"))) == len(kept) and not list(out.glob(".*.tmp"))
    deadline = time.monotonic() + 10
    while (alive := subprocess.run(["ps", "-o", "pid=,args=", "-s", str(p.pid)], capture_output=True, text=True).stdout.strip()):
        assert time.monotonic() < deadline, f"left behind: {alive}"  # no worker process stays
        time.sleep(0.2)
