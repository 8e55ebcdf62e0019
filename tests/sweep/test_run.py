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


def test_a_sweep_over_policies_and_memory_limits(traces, tmp_path):
    """The policy axes reach the heap: the seed's row is the plain replay; Go 1.27's classes and a limit change what they must."""
    from goheap.policy import GO_PAGE_SIZE, SizeClassTable
    from goheap.report.comparison import write_comparison
    from goheap.sweep.diff import diff, load_run_view
    from goheap.sweep.driver import run_sweep
    from goheap.sweep.results import ResultsDir

    spec = build_spec(traces=[str(traces["good"])], policy=["seed", "go1.27-classes"], memory_limit=["off", "512KiB"], clock="virtual")
    assert run_sweep(spec, tmp_path / "out", serial=True).ok == 4
    records = {(r["row"]["status"], r["params"]["settings"]["policy"], r["params"]["settings"]["memory_limit"]): r
               for r in ResultsDir(tmp_path / "out").records()}  # fmt: skip
    seed, seed_limited = records["ok", "seed", -1], records["ok", "seed", 512 << 10]
    go, go_limited = records["ok", "go1.27-classes", -1], records["ok", "go1.27-classes", 512 << 10]
    ref = replay(Trace.load(traces["good"]), mode="gc", gogc=100)
    assert {k: seed["row"][f"memstats.{k}"] for k in MEMSTATS_COLUMNS} == {k: ref.memstats.to_go()[k] for k in MEMSTATS_COLUMNS}
    assert seed["policy"]["name"] == "seed" and seed["policy"]["pacer"]["memory_limit"] == "off"
    # Go 1.27's table: its classes in the occupancy, 8 KB pages, other HeapInuse and waste; the same allocations
    go_sizes = {size for size, _ in SizeClassTable.go("1.27").rows}
    assert set(go["occupancy_at_peak"]["size"]) - {0} <= go_sizes
    assert set(go["occupancy_at_peak"]["size"]) != set(seed["occupancy_at_peak"]["size"])
    assert go["policy"]["size_classes"]["page_size"] == GO_PAGE_SIZE and go["row"]["fragmentation"] != seed["row"]["fragmentation"]
    assert go["row"]["peak_heap_inuse"] != seed["row"]["peak_heap_inuse"] and go["row"]["mallocs"] == seed["row"]["mallocs"]
    # a memory limit under the GOGC goal: more collections
    assert seed_limited["row"]["num_gc"] > seed["row"]["num_gc"] and go_limited["policy"]["pacer"]["memory_limit"] == 512 << 10
    # goheap diff names both policies; the report compares fragmentation by policy
    out = diff(load_run_view(str(tmp_path / "out" / "runs" / f"{seed['run_id']}.json")),
               load_run_view(f"{tmp_path / 'out'}:{go_limited['run_id']}"))  # fmt: skip
    assert out["params"]["policy"] == {"a": "seed", "b": "go1.27-classes"}
    assert out["params"]["memory_limit"] == {"a": "off", "b": "512KiB"}
    html = write_comparison(tmp_path / "r.html", tmp_path / "out").read_text()
    assert "Fragmentation per size class by policy" in html and "policy=go1.27-classes" in html


def test_a_trace_run_without_a_mode_or_a_trace_says_so() -> None:
    from heaptools import program_trace

    with pytest.raises(ValueError, match=r"mode must be one of \('gc', 'free'\), not None"):
        run_one(Source("trace", "t.trace.npz"), trace=program_trace(), mode=None, clock="virtual")
    with pytest.raises(ValueError, match="trace source 't.trace.npz' has no path, and no trace was given"):
        run_one(Source("trace", "t.trace.npz"), mode="gc", clock="virtual")
