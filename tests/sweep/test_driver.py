"""A sweep from start to end in this process: streaming, Ctrl-C, resume, and a DIR that is not ours."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from goheap.sweep.driver import run_sweep
from goheap.sweep.results import ResultsDir
from goheap.sweep.spec import SweepSpecError, build_spec


@pytest.fixture
def spec(traces):
    return build_spec(traces=[str(traces["good"])], gogc=["50", "100"], mode=["gc", "free"], clock="virtual")


def table(path):
    return pq.read_table(path / "results.parquet").to_pylist()


def test_ctrl_c_keeps_what_finished_and_resume_runs_the_rest(spec, tmp_path):
    out = tmp_path / "out"
    seen = []

    def interrupt_after_the_first(record):
        seen.append(record.run_id)
        raise KeyboardInterrupt

    outcome = run_sweep(spec, out, serial=True, on_record=interrupt_after_the_first)
    assert (outcome.interrupted, outcome.exit_status, outcome.ok, outcome.missing) == ("SIGINT", 130, 1, 3)
    assert [r["run_id"] for r in table(out)] == seen  # the finished run is in the table, nothing else
    assert sorted(p.stem for p in (out / "runs").glob("*.json")) == seen
    assert not list(out.glob(".*tmp"))  # no temporary file left behind
    assert len(json.loads((out / "sweep.json").read_text())["runs"]) == 4  # the whole grid is recorded

    with pytest.raises(SweepSpecError, match="holds a sweep already: --resume"):
        run_sweep(spec, out, serial=True)
    resumed = run_sweep(spec, out, serial=True, resume=True)
    assert (resumed.skipped, resumed.ok, resumed.interrupted) == (1, 3, "")
    rows = table(out)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert (out / "results.csv").read_text().count("\n") == 5
    again = run_sweep(spec, out, serial=True, resume=True)
    assert (again.skipped, again.finished) == (4, 0)


def test_sigterm_is_an_interruption_too(spec, tmp_path):
    import signal

    from goheap.interrupts import Interrupted

    def terminate(record):
        raise Interrupted(signal.SIGTERM)

    outcome = run_sweep(spec, tmp_path / "out", serial=True, on_record=terminate)
    assert (outcome.interrupted, outcome.exit_status, outcome.ok) == ("SIGTERM", 143, 1)


def test_resume_extends_a_grid_and_retries_failed_runs(traces, tmp_path):
    out = tmp_path / "out"
    first = build_spec(traces=[str(traces["good"]), str(traces["bad"])], gogc=["100"], clock="virtual")
    assert (run_sweep(first, out, serial=True).failed) == 1
    wider = build_spec(traces=[str(traces["good"]), str(traces["bad"])], gogc=["100", "400"], clock="virtual")
    outcome = run_sweep(wider, out, serial=True, resume=True)
    assert (outcome.skipped, outcome.ok, outcome.failed) == (1, 1, 2)  # the failed run is tried again
    assert len(table(out)) == 4


@pytest.mark.nojit
def test_an_output_directory_that_is_not_a_sweep_is_refused_untouched(spec, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SweepSpecError, match="not empty, and holds no sweep"):
        run_sweep(spec, other, serial=True)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(SweepSpecError, match="not a directory"):
        run_sweep(spec, afile, serial=True)
    with pytest.raises(SweepSpecError, match="does not exist"):
        run_sweep(spec, tmp_path / "no" / "such", serial=True)
    assert not (tmp_path / "no").exists()


def test_the_tables_hold_every_parameter_and_figure(spec, tmp_path):
    run_sweep(spec, tmp_path / "out", serial=True)
    rows = table(tmp_path / "out")
    from goheap.sweep.results import COLUMNS

    assert list(rows[0]) == list(COLUMNS)
    assert [(r["gogc"], r["mode"]) for r in rows] == [(50, "free"), (50, "gc"), (100, "free"), (100, "gc")]
    for r in rows:
        assert r["memstats.NumGC"] == r["num_gc"] > 0 and r["peak_heap_alloc"] >= r["memstats.HeapAlloc"]
        assert r["peak_heap_inuse"] <= r["peak_heap_sys"] and r["peak_resident"] >= r["final_resident"] > 0
        assert 0 <= r["fragmentation"] < 1 and r["events"] > 6000 and r["recorded_num_gc"] == 6
    records = ResultsDir(tmp_path / "out").records()
    assert [r["run_id"] for r in records] == [r["run_id"] for r in rows]
    assert len(records[0]["samples"]["event"]) == len(records[0]["samples"]["heap_alloc"]) > 3


@pytest.mark.nojit
def test_progress_counts_done_failed_and_running(capsys):
    from goheap.sweep.driver import _Progress
    from goheap.sweep.run import RunRecord
    from goheap.sweep.spec import RunParams, Source

    def record(name, status):
        return RunRecord(RunParams(Source("workload", name), ()), {"status": status, "error": "boom", "wall_s": 1.5})

    bar = _Progress(total=5, skipped=1, style="bar")
    for name in "abc":
        bar.started(record(name, "ok").run_id)
    bar.finished(record("a", "ok"))
    bar.finished(record("b", "failed"))
    task = bar._bar.tasks[0]
    assert (task.completed, task.fields["ok"], task.fields["failed"], task.fields["running"]) == (3, 2, 1, 1)
    bar.close()
    lines = _Progress(total=2, skipped=0, style="lines")
    lines.finished(record("x", "failed"))
    assert capsys.readouterr().err.endswith("\n[1/2] x (1.5 s): FAILED: boom\n")
