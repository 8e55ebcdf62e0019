"""goheap sweep and goheap diff on the command line: runs, outputs, exit codes, and bad input rejected first."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from goheap.cli import main


def invoke(*args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], **kw)


@pytest.fixture(scope="module")
def swept(traces, tmp_path_factory):
    """goheap sweep --serial over a trace and a workload, with its report."""
    d = tmp_path_factory.mktemp("cli")
    res = invoke("sweep", "--serial", "--trace", traces["good"], "--workload", "binarytrees 6", "--gogc", "50,200",
                 "--mode", "gc,free", "--clock", "virtual", "-o", d / "out", "--report", d / "report.html")  # fmt: skip
    assert res.exit_code == 0, res.output
    return d, res


def test_sweep_writes_the_tables_the_runs_and_the_report(swept):
    d, res = swept
    out = d / "out"
    assert "6 runs: 6 done, 0 failed; serially in this process" in res.stdout
    assert "Report: " in res.stdout and (d / "report.html").is_file()
    assert len(list((out / "runs").glob("*.json"))) == 6
    assert (out / "results.csv").read_text().count("\n") == 7
    assert res.stderr.count("): ok") == 6  # a line per finished run when stderr is no terminal


def test_resume_on_a_finished_sweep_runs_nothing_and_rewrites_the_report(swept, traces):
    d, _ = swept
    (d / "report.html").unlink()
    res = invoke("sweep", "--serial", "--trace", traces["good"], "--workload", "binarytrees 6", "--gogc", "50,200",
                 "--mode", "gc,free", "--clock", "virtual", "-o", d / "out", "--report", d / "report.html", "--resume")  # fmt: skip
    assert res.exit_code == 0 and "0 done, 6 done before" in res.stdout and (d / "report.html").is_file()


def test_resume_alone_continues_the_recorded_grid_and_flags_widen_it(traces, tmp_path):
    first = invoke("sweep", "--serial", "--trace", traces["good"], "--gogc", "50,100", "--clock", "virtual", "-o", tmp_path / "o")
    assert first.exit_code == 0, first.output
    res = invoke("sweep", "--serial", "--resume", "-o", tmp_path / "o")
    assert res.exit_code == 0 and "2 runs: 0 done, 2 done before" in res.stdout
    res = invoke("sweep", "--serial", "--resume", "-o", tmp_path / "o", "--gogc", "50,100,300")
    assert res.exit_code == 0 and "3 runs: 1 done, 2 done before" in res.stdout
    res = invoke("sweep", "--serial", "--resume", "-o", tmp_path / "none")
    assert res.exit_code == 2 and "holds no sweep to resume" in res.stderr


def test_a_failed_run_exits_1(traces, tmp_path):
    res = invoke("sweep", "--serial", "--trace", traces["bad"], "--trace", traces["good"], "--clock", "virtual", "-o", tmp_path / "o")
    assert res.exit_code == 1 and "2 runs: 1 done, 1 failed" in res.stdout and "FAILED: ReplayError" in res.stderr


def test_a_spec_file_and_flags(traces, tmp_path, monkeypatch):
    spec = tmp_path / "grid.toml"
    spec.write_text(f'traces = ["{traces["good"].name}"]\nclock = "virtual"\n[grid]\ngogc = [10, 20, 30]\n')
    (tmp_path / traces["good"].name).write_bytes(traces["good"].read_bytes())
    res = invoke("sweep", spec, "--serial", "--gogc", "40", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "1 runs: 1 done" in res.stdout  # --gogc replaced the file's axis
    # a policy file: in the spec, relative to it; on the command line, relative to here
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "mine.toml").write_text('based_on = "modern"\n')
    spec.write_text(spec.read_text() + 'policy = ["p/mine.toml"]\n')
    monkeypatch.chdir(tmp_path / "p")
    res = invoke("sweep", spec, "--serial", "--gogc", "40", "-o", tmp_path / "mine")
    assert res.exit_code == 0, res.output
    res = invoke("sweep", spec, "--serial", "--gogc", "40", "--policy", "mine.toml", "-o", tmp_path / "mine", "--resume")
    assert res.exit_code == 0 and "1 runs: 0 done, 1 done before" in res.stdout, res.output
    assert ',"mine",' in (tmp_path / "mine" / "results.csv").read_text().splitlines()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gogc", "50,lots"], "--gogc: GOGC must be a percentage N >= 0 (at most 2147483647) or 'off', not 'lots'"),
        (["--gogc", "-1"], "not '-1'"),
        (["--mode", "gc,"], "mode must be one of gc, free, not ''"),
        (["--policy", "seed,nosuch"], "--policy: unknown policy 'nosuch' (known: seed, go1.27-classes, modern-pacer, modern"),
        (["--policy", "none.toml"], "none.toml: cannot read the policy file"),
        (["--memory-limit", "off,64MB"], "--memory-limit: '64MB' is not a byte count"),
        (["--min-heap", "4 MiB"], "--min-heap: '4 MiB' is not a byte count"),
        (["--workload", "nosuch"], "unknown workload 'nosuch'"),
        (["--serial", "--scheduler", "tcp://127.0.0.1:1"], "cannot be combined with --scheduler"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "with --scheduler the cluster has its own workers"),
        (["--report", "/no/such/dir/r.html"], "cannot write --report /no/such/dir/r.html: no such directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(traces, tmp_path, args, message):
    res = invoke("sweep", "--trace", traces["good"], "-o", tmp_path / "out", *args)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("goheap sweep: error: ") and message in res.stderr and res.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_missing_trace_and_an_unknown_key(tmp_path):
    res = invoke("sweep", "--trace", tmp_path / "none.trace.npz", "-o", tmp_path / "out")
    assert res.exit_code == 2 and "none.trace.npz: no such file" in res.stderr
    spec = tmp_path / "s.toml"
    spec.write_text('workloads = ["gcbench"]\nrepeat = 3\n')
    res = invoke("sweep", spec, "-o", tmp_path / "out")
    assert res.exit_code == 2 and "s.toml: unknown key 'repeat'" in res.stderr
    assert not (tmp_path / "out").exists()


def test_an_existing_sweep_needs_resume(swept, traces):
    d, _ = swept
    res = invoke("sweep", "--serial", "--trace", traces["good"], "-o", d / "out")
    assert res.exit_code == 2 and "holds a sweep already: --resume" in res.stderr


@pytest.mark.slow
def test_an_unreachable_scheduler_is_a_clear_error_within_seconds(traces, tmp_path):
    t0 = time.monotonic()
    res = invoke("sweep", "--trace", traces["good"], "-o", tmp_path / "out", env={"DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:9"})
    took = time.monotonic() - t0
    assert res.exit_code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in res.stderr
    assert took < 10 and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- goheap diff


def test_diff_a_run_json_and_a_sweep_row(swept, tmp_path):
    d, _ = swept
    run = invoke("run", "binarytrees", "6", "--gogc", "50", "--json")
    (tmp_path / "a.json").write_text(run.stdout)
    rows = (d / "out" / "results.csv").read_text().splitlines()
    n = next(i for i, line in enumerate(rows) if '"binarytrees 6"' in line and ",50," in line)
    res = invoke("diff", tmp_path / "a.json", f"{d / 'out'}:{n}", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["params"]["workload"] == {"a": "binarytrees", "b": None} and out["params"]["gogc"]["b"] == 50
    for k in ("NumGC", "Mallocs", "HeapSys", "TotalAlloc"):  # the same program, the same GOGC: the same heap
        assert out["memstats"][k]["diff"] == 0, k
    assert out["figures"]["num_gc"]["a"] == out["memstats"]["NumGC"]["a"]
    text = invoke("diff", tmp_path / "a.json", f"{d / 'out'}:{n}")
    assert text.exit_code == 0 and "HeapSys" in text.stdout and "Parameters" in text.stdout


def test_diff_two_sweep_rows_by_id_and_a_replay_json(swept, traces, tmp_path):
    d, _ = swept
    records = [json.loads(p.read_text()) for p in (d / "out" / "runs").glob("*.json")]
    a, b = (r for r in records if r["params"]["source"]["kind"] == "trace" and r["params"]["settings"]["mode"] == "gc")
    res = invoke("diff", f"{d / 'out'}:{a['run_id'][:6]}", d / "out" / "runs" / f"{b['run_id']}.json", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["figures"]["num_gc"]["diff"] == b["row"]["num_gc"] - a["row"]["num_gc"] != 0
    replayed = invoke("replay", traces["good"], "--gogc", str(a["params"]["settings"]["gogc"]), "--json")
    (tmp_path / "r.json").write_text(replayed.stdout)
    res = invoke("diff", tmp_path / "r.json", f"{d / 'out'}:{a['run_id']}", "--json")
    out = json.loads(res.stdout)
    assert res.exit_code == 0 and out["figures"]["num_gc"]["diff"] == 0 and out["figures"]["peak_heap_alloc"]["diff"] == 0


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("{tmp}/none.json", "no such file"),
        ("{tmp}/notjson.json", "not JSON"),
        ("{tmp}/other.json", "not a goheap run"),
        ("{out}:zzzz", "no run of"),
        ("{out}:99", "there is no row 99"),
        ("{out}:999", "nor is it a row"),
        ("{out}", "a directory; name one run"),
    ],
)
def test_diff_bad_input(swept, tmp_path, arg, message):
    d, _ = swept
    (tmp_path / "notjson.json").write_text("{")
    (tmp_path / "other.json").write_text('{"x": 1}')
    res = invoke("diff", arg.format(tmp=tmp_path, out=d / "out"), d / "out:1")
    assert res.exit_code == 2 and res.stderr.startswith("goheap diff: error: ") and message in res.stderr
