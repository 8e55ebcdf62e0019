"""The goheap command line: run, compare, sizeclasses; exit codes and formats."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from goheap import cli
from goheap.workloads import WORKLOADS


@pytest.fixture
def runner():
    return CliRunner()


def test_run_prints_the_program_then_a_summary(runner):
    res = runner.invoke(cli.main, ["run", "binarytrees", "6"], env={"GOGC": "", "GOGCTRACE": "", "GODEBUG": ""})
    assert res.exit_code == 0, res.output
    out = res.stdout.splitlines()
    assert out[0] == "stretch tree of depth 7\t check: 255" and len(out) == 5 and res.stderr == ""
    assert re.fullmatch(
        r"# goheap: \d+ collections?, pause total \d+\.\d ms \(max \d+\.\d ms\), peak heap \d+\.\d MB, "
        r"HeapSys \d+\.\d MB, \d+\.\d\d s; GOGC=100 \(default\)",
        out[-1],
    ), out[-1]


def test_run_memstats_and_output_files(runner, tmp_path):
    prefix = tmp_path / "bt"
    res = runner.invoke(cli.main, ["run", "binarytrees", "6", "--gctrace", "--memstats", "-o", str(prefix)])
    assert res.exit_code == 0, res.output
    out = res.stdout.splitlines()
    assert out[0] == "stretch tree of depth 7\t check: 255"
    k = out.index("# MemStats")
    assert out[k + 1].startswith("Alloc=") and any(line.startswith("BySize[60].Frees=") for line in out)
    assert re.match(r"gc1\(1\): \d+\+\d+\+\d+ ms, 0 -> 0 MB 11 -> 13 \(14-1\) objects", res.stderr)
    assert (tmp_path / "bt.stdout").read_text().splitlines() == out
    assert (tmp_path / "bt.stderr").read_text().startswith("gc1(1): ")


def test_run_json(runner):
    res = runner.invoke(cli.main, ["run", "binarytrees", "6", "--json", "--gogc", "off"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["workload"] == "binarytrees" and data["args"] == ["6"]
    assert data["memstats"]["NumGC"] == 0  # GOGC=off: no collection at all
    assert data["gctrace"] == [] and data["output"][-1].startswith("long lived tree of depth 6")


def test_gogc_from_the_environment_and_flag_wins(runner):
    env = {"GOGC": "off", "GOGCTRACE": "1"}
    res = runner.invoke(cli.main, ["run", "binarytrees", "6", "--memstats"], env=env)
    assert res.exit_code == 0 and "NumGC=0" in res.stdout and res.stderr == ""
    res = runner.invoke(cli.main, ["run", "binarytrees", "6", "--gogc", "50"], env=env)
    assert res.exit_code == 0 and res.stdout.endswith("GOGC=50 (--gogc)\n") and res.stderr.startswith("gc1(1)")
    res = runner.invoke(cli.main, ["run", "binarytrees", "6"], env={"GOGC": "-5", "GOGCTRACE": "", "GODEBUG": "gctrace=1"})
    assert res.exit_code == 0 and res.stderr.startswith("gc1(1)")
    assert res.stdout.endswith("GOGC=0 ($GOGC='-5', read as the 2013 runtime's atoi reads it)\n")


def test_run_modern_gctrace(runner):
    res = runner.invoke(cli.main, ["run", "binarytrees", "6", "--gctrace", "--gctrace-format", "modern"])
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    assert re.fullmatch(
        r"gc 1 @\d+\.\d{3}s \d+%: [\d.]+\+[\d.]+\+[\d.]+ ms clock, [\d.]+\+0/[\d.]+/0\+[\d.]+ ms cpu, "
        r"0->0->0 MB, 0 MB goal, 0 MB stacks, 0 MB globals, 1 P",
        lines[0],
    ), lines[0]
    assert all(line.startswith(f"gc {k} @") for k, line in enumerate(lines, 1))


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nosuch"], "unknown workload 'nosuch'"),
        (["run", "binarytrees", "x"], "N must be an integer"),
        (["run", "gcbench", "3"], "gcbench takes no arguments"),
        (["run", "binarytrees", "--gogc", "-5"], "GOGC must be a percentage N >= 0"),
        (["run", "binarytrees", "6", "--bogus"], "unknown option '--bogus'"),
        (["compare", "/nonexistent/run"], "cannot read"),
    ],
)
def test_bad_input_exits_2_without_traceback(runner, args, message):
    res = runner.invoke(cli.main, args)
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output


def test_compare_runs_the_matching_workload(runner, seed_runs):
    res = runner.invoke(cli.main, ["compare", str(seed_runs / "binarytrees-N10-gogc200"), "--json", "--check"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["numgc_ok"] and data["heap_sys_ok"]
    assert data["summary"]["NumGC"] == {"ref": 4, "ours": 4}


def test_compare_two_files_and_check_fails_on_difference(runner, seed_runs, tmp_path):
    prefix = tmp_path / "ours"
    assert runner.invoke(cli.main, ["run", "binarytrees", "6", "--gctrace", "-o", str(prefix)]).exit_code == 0
    res = runner.invoke(cli.main, ["compare", str(seed_runs / "binarytrees-N14-gogc100default"), str(prefix), "--check"])
    assert res.exit_code == 1  # a different program: NumGC and HeapSys differ
    assert "NumGC" in res.stdout and "DIFFERS" in res.stdout


def test_sizeclasses(runner):
    res = runner.invoke(cli.main, ["sizeclasses"])
    rows = res.stdout.splitlines()[2:]
    assert len(rows) == 60 and rows[0].split() == ["1", "8", "4096", "512", "0", "87.50%"]


def test_workload_help_lists_every_workload():
    listed = re.findall(r"^  ([a-z-]+) ", cli.WORKLOAD_HELP, re.M)
    assert listed == list(WORKLOADS)


def test_run_race_checks_a_single_goroutine_and_changes_no_figure(runner):
    plain = runner.invoke(cli.main, ["run", "binarytrees", "8", "--json", "--gogc", "100"])
    raced = runner.invoke(cli.main, ["run", "binarytrees", "8", "--json", "--gogc", "100", "--race"], env={"GORACE": ""})
    assert plain.exit_code == 0 and raced.exit_code == 0, raced.output
    a, b = json.loads(plain.stdout), json.loads(raced.stdout)
    assert b["races"] == 0 and a["output"] == b["output"]
    for key in ("NumGC", "HeapAlloc", "HeapSys", "Sys", "Mallocs", "Frees", "NextGC"):
        assert a["memstats"][key] == b["memstats"][key], key


def test_run_race_rejects_a_bad_gorace(runner):
    res = runner.invoke(cli.main, ["run", "binarytrees", "6", "--race"], env={"GORACE": "history_size=9"})
    assert res.exit_code == 2 and "history_size must be 0..7" in res.stderr
