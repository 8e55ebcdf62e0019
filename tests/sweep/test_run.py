"""The one run function: a workload or a trace, its figures, and failures recorded rather than raised."""

from __future__ import annotations

import io

import pytest

from goheap.sweep.run import FIGURES, MEMSTATS_COLUMNS, execute, run_one, warm_up
from goheap.sweep.spec import RunParams, Source, build_spec
from goheap.trace import Trace, replay
from goheap.workloads import run_workload


def test_a_trace_run_is_the_replay(traces):
    spec = build_spec(traces=[str(traces["good"])])
    source = spec.sources[0]
    rec = run_one(source, gogc=50, mode="gc", clock="virtual")
    ref = replay(Trace.load(traces["good"]), mode="gc", gogc=50)
    row = rec.row
    assert row["status"] == "ok" and row["num_gc"] == ref.num_gc > 0
    assert row["peak_heap_alloc"] == ref.goheap_peak_heap_alloc
    assert row["recorded_num_gc"] == ref.trace_num_gc and row["events"] == ref.events
    assert {k: row[f"memstats.{k}"] for k in MEMSTATS_COLUMNS} == {k: ref.memstats.to_go()[k] for k in MEMSTATS_COLUMNS}
    assert row["pause_total_ns"] == 0  # the virtual clock
    assert set(FIGURES) <= set(row)
    # the trace object given, or read from the file: the same run
    again = run_one(source, trace=spec.traces[source.digest], gogc=50, mode="gc", clock="virtual")
    assert {k: v for k, v in again.row.items() if k not in ("cpu_s", "wall_s")} == {k: v for k, v in row.items() if k not in ("cpu_s", "wall_s")}


def test_the_heap_curve_is_on_the_recorded_clock_when_the_trace_has_one(traces):
    from heaptools import program_trace

    timed = program_trace(clock=True)
    rec = run_one(Source("trace", "timed"), trace=timed, gogc=50, clock="virtual")
    curve = rec.details["curve"]
    t = curve["time_ns"]
    assert len(t) == len(curve["heap_alloc"]) and t == sorted(t) and 0 <= t[0] and t[-1] == timed.time_ns[-1]
    untimed = run_one(Source("trace", "untimed"), trace=program_trace(), gogc=50, clock="virtual")
    assert "time_ns" not in untimed.details["curve"] and untimed.row["num_gc"] == rec.row["num_gc"]


def test_a_workload_run_is_goheap_run(tmp_path):
    source = Source("workload", "binarytrees", ("6",))
    rec = run_one(source, gogc=50, clock="real")
    ref = run_workload("binarytrees", ["6"], gcpercent=50, gctrace=0, trace_stream=io.StringIO())
    ms = ref.memstats.to_go()
    for k in ("NumGC", "Mallocs", "Frees", "HeapSys", "TotalAlloc", "HeapAlloc"):
        assert rec.row[f"memstats.{k}"] == ms[k], k
    assert rec.details["output"] == ref.lines
    assert rec.row["pause_total_ns"] > 0 and rec.row["pause_max_ns"] > 0  # measured on the real clock
    assert rec.row["events"] is None if "events" in rec.row else True
    samples = rec.details["samples"]
    assert len(samples["heap_alloc"]) == len(samples["resident"]) >= 3
    assert rec.row["peak_resident"] >= max(samples["resident"]) > 0
    occ = rec.details["occupancy_at_peak"]
    assert sum(occ["bytes_in_spans"]) == rec.row["peak_heap_inuse"] or sum(occ["bytes_in_spans"]) <= rec.row["peak_heap_sys"]


def test_a_failing_run_is_a_record_not_an_exception(traces):
    params = build_spec(traces=[str(traces["bad"])]).runs()[0]
    rec = execute(params)
    assert not rec.ok and rec.row["error"].startswith("ReplayError: event 0:") and "larger than" in rec.row["error"]
    assert "Traceback" in rec.details["traceback"] and rec.to_json()["label"] == params.label


@pytest.mark.nojit
def test_run_params_round_trip():
    p = RunParams(Source("workload", "gcbench"), (("gogc", -1),), "virtual")
    assert p.label == "gcbench gogc=off" and p.setting("gogc") == -1 and p.setting("mode") is None
    assert p.to_json()["settings"] == {"gogc": -1} and len(p.run_id) == 12


def test_warm_up_loads_once():
    assert warm_up() == warm_up() == 1
