"""Sweep descriptions: TOML and flags, the grid's expansion, stable run ids, and every bad input named."""

from __future__ import annotations

import pytest

from goheap.sweep.spec import AXES, SweepSpecError, build_spec, load_spec, parse_gogc

pytestmark = pytest.mark.nojit


def write(tmp_path, text: str, name: str = "sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_toml_sweep_expands_to_the_product_of_its_axes(tmp_path, traces):
    (tmp_path / "t").mkdir()
    spec = load_spec(write(tmp_path / "t", f"""
traces = ["{traces['good']}"]
workloads = ["binarytrees 8", {{name = "gcbench"}}]
clock = "virtual"
[grid]
gogc = [25, "50", "off"]
mode = ["gc", "free"]
"""))
    runs = spec.runs()
    # the trace: 3 GOGC x 2 modes; each workload: 3 GOGC (mode applies to traces only)
    assert len(runs) == 3 * 2 + 2 * 3
    trace_runs = [r for r in runs if r.source.kind == "trace"]
    assert {(r.setting("gogc"), r.setting("mode")) for r in trace_runs} == {(g, m) for g in (25, 50, -1) for m in ("gc", "free")}
    assert all(r.setting("mode") is None and r.clock == "virtual" for r in runs if r.source.kind == "workload")
    assert {r.source.label for r in runs} == {"good.trace.npz", "binarytrees 8", "gcbench"}
    assert len({r.run_id for r in runs}) == len(runs)
    assert "gogc=off" in next(r.label for r in runs if r.setting("gogc") == -1)


def test_run_ids_are_stable_and_follow_the_trace_contents(tmp_path, traces):
    a = build_spec(traces=[str(traces["good"])], gogc=["50"]).runs()
    b = build_spec(traces=[str(traces["good"])], gogc=["50", "100"]).runs()
    assert a[0].run_id in {r.run_id for r in b}  # extending a grid keeps the ids of its runs
    copy = tmp_path / "copy.trace.npz"
    copy.write_bytes(traces["good"].read_bytes())
    assert build_spec(traces=[str(copy)], gogc=["50"]).runs()[0].run_id == a[0].run_id  # by contents, not by name
    assert build_spec(traces=[str(traces["other"])], gogc=["50"]).runs()[0].run_id != a[0].run_id


def test_flags_replace_the_files_keys(tmp_path, traces):
    path = write(tmp_path, f'traces = ["{traces["good"]}"]\n[grid]\ngogc = [10, 20]\n')
    spec = load_spec(path, gogc=["30"], mode=["free"])
    assert spec.axis_values("gogc") == (30,) and spec.axis_values("mode") == ("free",)
    assert spec.axis_values("mode") == ("free",) and len(spec.runs()) == 1


def test_defaults_and_duplicates(traces):
    spec = build_spec(traces=[str(traces["good"]), str(traces["good"])], gogc=["50", "50"])
    assert spec.axis_values("mode") == (AXES["mode"].default,) and len(spec.runs()) == 1


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('traces = ["{good}"]\nbogus = 1\n', "unknown key 'bogus'"),
        ('traces = ["{good}"]\ngogc = [1]\n', "an axis goes under [grid]"),
        ('traces = ["{good}"]\n[grid]\nsize = [1]\n', "unknown axis grid.size"),
        ('traces = ["{good}"]\n[grid]\ngogc = []\n', "axis grid.gogc is empty"),
        ('traces = ["{good}"]\n[grid]\ngogc = [-5]\n', "grid.gogc: GOGC must be a percentage N >= 0"),
        ('traces = ["{good}"]\n[grid]\ngogc = ["50%"]\n', "not '50%'"),
        ('traces = ["{good}"]\n[grid]\nmode = ["sweep"]\n', "mode must be one of gc, free"),
        ('traces = ["missing.trace.npz"]\n', "trace missing.trace.npz"),
        ('traces = ["{notatrace}"]\n', "x.npz: not a valid goheap trace file"),
        ('workloads = ["nosuch 1"]\n', "unknown workload 'nosuch'"),
        ('workloads = ["gcbench 3"]\n', "gcbench takes no arguments"),
        ('workloads = ["binarytrees"]\n[grid]\nmode = ["gc"]\n', "applies to traces only"),
        ('clock = "wall"\ntraces = ["{good}"]\n', "clock must be one of real, virtual"),
        ("[grid]\ngogc = [1]\n", "nothing to run"),
        ('traces = ["{good}"]\n[grid]\npolicy = ["seed", "nosuch"]\n',
         "grid.policy: unknown policy 'nosuch' (known: seed, go1.27-classes, modern-pacer, modern"),
        ('traces = ["{good}"]\n[grid]\npolicy = ["none.toml"]\n', "none.toml: cannot read the policy file"),
        ('traces = ["{good}"]\n[grid]\npolicy = [{{based_on = "nosuch"}}]\n', "based_on: unknown preset 'nosuch'"),
        ('traces = ["{good}"]\n[grid]\npolicy = [7]\n', "grid.policy: a policy is a preset's name"),
        ('traces = ["{good}"]\n[grid]\nmemory_limit = ["off", "64MB"]\n', "grid.memory_limit: '64MB' is not a byte count"),
        ('traces = ["{good}"]\n[grid]\nmin_heap = [-1]\n', "grid.min_heap: byte count -1 is negative"),
        ("traces = [\n", "not valid TOML"),
    ],
)
def test_bad_input_is_named(tmp_path, traces, toml, message):
    notatrace = tmp_path / "x.npz"
    notatrace.write_bytes(b"PK\x03\x04 not really")
    path = write(tmp_path, toml.format(good=traces["good"], notatrace=notatrace))
    with pytest.raises(SweepSpecError, match=None) as info:
        load_spec(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_flags_are_named_as_flags(traces):
    with pytest.raises(SweepSpecError, match=r"the command line: --gogc: GOGC must be a percentage"):
        build_spec(traces=[str(traces["good"])], gogc=["50", "fifty"])
    with pytest.raises(SweepSpecError, match="--mode is empty"):
        build_spec(traces=[str(traces["good"])], mode=[])


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(SweepSpecError, match="no such file"):
        load_spec(tmp_path / "none.toml")
    with pytest.raises(SweepSpecError, match="is a directory"):
        load_spec(tmp_path)


def test_parse_gogc():
    assert parse_gogc(0) == 0 and parse_gogc("off") == parse_gogc("OFF") == -1 and parse_gogc(" 200 ") == 200
    for bad in (True, -1, "-1", "1e3", "", None, 1 << 31):
        with pytest.raises(ValueError):
            parse_gogc(bad)


def test_the_policy_axes(tmp_path, traces):
    (tmp_path / "policies").mkdir()
    mine = write(tmp_path / "policies", '[pacer]\nmin_heap = "1MiB"\n', "mine.toml")
    path = write(tmp_path, f"""
traces = ["{traces['good']}"]
[grid]
policy = ["seed", "modern", "policies/mine.toml", {{name = "big", based_on = "modern", pacer = {{min_heap = "8MiB"}}}}]
memory_limit = ["off", "64MiB"]
min_heap = ["4MiB"]
""")
    spec = load_spec(path)
    assert [p.name for p in spec.axis_values("policy")] == ["seed", "modern", "mine", "big"]  # a file's name: its stem
    assert spec.axis_values("memory_limit") == (-1, 64 << 20) and spec.axis_values("min_heap") == (4 << 20,)
    runs = spec.runs()
    assert len(runs) == 4 * 2 and len({r.run_id for r in runs}) == 8
    row = runs[-1].to_json()["settings"]  # the results table's columns: the policy's name, byte counts
    assert row == {"gogc": 100, "mode": "gc", "policy": "big", "memory_limit": 64 << 20, "min_heap": 4 << 20}
    assert runs[-1].label == "good.trace.npz gogc=100 mode=gc policy=big memory_limit=64MiB min_heap=4MiB"
    for name, axis in AXES.items():  # what a results directory records is read back to the same value (--resume)
        for v in spec.axis_values(name):
            assert axis.parse(axis.form(v), None) == v
    # a policy file enters the run ids by its contents: edit it, and its runs are new ones
    ids = {r.run_id for r in runs}
    mine.write_text('[pacer]\nmin_heap = "2MiB"\n')
    again = {r.run_id for r in load_spec(path).runs()}
    assert len(ids - again) == 2 and len(again - ids) == 2
    # without the axes: the seed's policy, its own limits; the label as before
    plain = build_spec(traces=[str(traces["good"])]).runs()[0]
    assert plain.setting("policy").is_seed and plain.setting("memory_limit") is None and plain.label == "good.trace.npz gogc=100 mode=gc"


def test_policy_flags_are_named_as_flags(traces):
    with pytest.raises(SweepSpecError, match=r"the command line: --policy: unknown policy 'modren' \(known: seed, "):
        build_spec(traces=[str(traces["good"])], policy=["seed", "modren"])
    with pytest.raises(SweepSpecError, match=r"the command line: --memory-limit: '1.5GiB' is not a byte count"):
        build_spec(traces=[str(traces["good"])], memory_limit=["1.5GiB"])
