"""Sweeps on Dask distributed: a real LocalCluster of two worker processes, started once for the module."""

from __future__ import annotations

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
    assert all(w.split(":")[1] != str(__import__("os").getpid()) for w in workers)  # ran in the workers
    # each worker loaded the compiled runtime once, however many runs it had
    loads = runner.client.run(lambda: __import__("goheap.sweep.run", fromlist=["_WARM"])._WARM["loaded"])
    assert sorted(loads.values()) == [1, 1]


def test_a_failing_run_is_recorded_and_the_others_finish(runner, traces, tmp_path):
    spec = build_spec(traces=[str(traces["bad"]), str(traces["good"])], gogc=["100", "off"], clock="virtual")
    # the scheduler by address: an existing cluster, left running
    outcome = run_sweep(spec, tmp_path / "out", scheduler=runner.cluster.scheduler_address)
    assert (outcome.ok, outcome.failed, outcome.interrupted) == (2, 2, False)
    assert "Dask cluster at tcp://" in outcome.where
    rows = {(r["source"], r["gogc"]): r for r in pq.read_table(tmp_path / "out" / "results.parquet").to_pylist()}
    bad = rows[("bad.trace.npz", 100)]
    assert bad["status"] == "failed" and bad["error"].startswith("ReplayError: event 0") and bad["num_gc"] is None
    assert rows[("good.trace.npz", -1)]["status"] == "ok" and rows[("good.trace.npz", -1)]["num_gc"] == 0  # GOGC=off
    record = next(r for r in ResultsDir(tmp_path / "out").records() if r["row"]["status"] == "failed")
    assert "Traceback" in record["traceback"]
    assert runner.client.status == "running"  # the cluster is the caller's: still up
