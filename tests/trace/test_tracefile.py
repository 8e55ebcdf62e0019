"""Tests of the trace file format (:mod:`goheap.trace.tracefile`) and ``goheap trace info``."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from goheap.errors import HeapError
from goheap.trace import FORMAT_VERSION, KIND_ALLOC, KIND_FREE, KIND_GC, Trace, TraceFormatError, import_log
from goheap.trace.cli import trace_group

SHARED = Path(__file__).resolve().parents[2] / "../shared/data/go1.19-traces"


def small_trace(**meta) -> Trace:
    return Trace(
        kind=[KIND_ALLOC, KIND_ALLOC, KIND_FREE, KIND_GC, KIND_ALLOC],
        addr=[0xC000010000, 0xFFFF_FFFF_FFFF_FFF0, 0xC000010000, 0, 0x10],
        size=[16, 2**63 + 8, 16, 0, 4096],
        type_id=[0, -1, -1, -1, 1],
        func_id=[1, 0, -1, -1, -1],
        types=("*main.Node", "struct { a, b int; c map[string][]*T }"),
        funcs=("main.bottomUp", "go/parser.(*parser).next"),
        meta={"source": "x.log", **meta},
    )


def test_columns_and_counts() -> None:
    t = small_trace()
    assert len(t) == 5
    assert [getattr(t, n).dtype.str for n in ("kind", "addr", "size", "type_id", "func_id")] == [
        "|u1",
        "<u8",
        "<u8",
        "<i4",
        "<i4",
    ]
    assert t.counts() == {"alloc": 3, "free": 1, "gc": 1}
    assert (t.n_alloc, t.n_free, t.n_gc) == (3, 1, 1)
    assert t.bytes_by_kind() == {"alloc": 16 + 2**63 + 8 + 4096, "free": 16}
    assert t.meta["events"] == 5 and t.meta["counts"] == t.counts()
    assert t.meta["format"] == "goheap-trace" and t.meta["version"] == FORMAT_VERSION
    assert t.type_name(0) == "*main.Node" and t.type_name(1) is None
    assert t.func_name(0) == "go/parser.(*parser).next" and t.func_name(2) is None


def test_summary() -> None:
    s = small_trace().summary()
    assert s.startswith("x.log: 5 events: 3 allocs (8192.0 PiB), 1 frees (16 B), 1 GC points; ")
    assert "2 distinct types, 2 distinct allocating functions" in s
    assert "truncated" not in s
    assert "truncated" in small_trace(truncated=True).summary()


def test_immutable() -> None:
    t = small_trace()
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.kind = np.zeros(5, np.uint8)  # type: ignore[misc]
    with pytest.raises(ValueError):
        t.addr[0] = 1
    with pytest.raises(TypeError):
        t.meta["source"] = "y"  # type: ignore[index]
    src = np.array([0, 1], np.uint8)
    t2 = Trace(kind=src, addr=[1, 2], size=[3, 4], type_id=[-1, -1], func_id=[-1, -1])
    src[0] = 2  # the trace took a copy
    assert t2.kind.tolist() == [0, 1]


def test_rejects_ragged_columns() -> None:
    with pytest.raises(ValueError, match="'addr' has 1 rows, expected 2"):
        Trace(kind=[0, 0], addr=[1], size=[1, 2], type_id=[-1, -1], func_id=[-1, -1])


def test_round_trip(tmp_path: Path) -> None:
    t = small_trace(log_bytes=123, truncated=False)
    out = t.save(tmp_path / "t.trace.npz")
    assert out == tmp_path / "t.trace.npz"
    u = Trace.load(out)
    assert u == t
    assert dict(u.meta) == dict(t.meta)
    for name in ("kind", "addr", "size", "type_id", "func_id"):
        assert getattr(u, name).dtype == getattr(t, name).dtype
        assert np.array_equal(getattr(u, name), getattr(t, name))
    assert u.types == t.types and u.funcs == t.funcs
    # loadable with plain numpy, no pickle
    with np.load(out, allow_pickle=False) as npz:
        assert set(npz.files) == {
            "kind", "addr", "size", "type_id", "func_id", "noscan", "time_ns", "stack_id",
            "stack_frames", "stack_offsets", "gc_end_ns", "heap_series", "goal_series", "strings", "meta",
        }  # fmt: skip
        assert json.loads(npz["meta"].tobytes())["version"] == FORMAT_VERSION == 3
        assert json.loads(npz["strings"].tobytes())["types"] == list(t.types)
        # version 3 stores addresses and times as differences, ids as narrow as their table
        assert np.array_equal(np.cumsum(npz["addr"], dtype=np.uint64), t.addr)
        assert np.array_equal(np.cumsum(npz["time_ns"], dtype=np.int64), t.time_ns)
        assert npz["type_id"].dtype == npz["func_id"].dtype == npz["stack_id"].dtype == np.int8
        assert np.array_equal(npz["size"], t.size)


def test_save_keeps_the_name_and_leaves_no_temp_files(tmp_path: Path) -> None:
    t = small_trace()
    t.save(tmp_path / "odd.name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.name"]
    assert Trace.load(tmp_path / "odd.name") == t
    with pytest.raises(OSError):
        t.save(tmp_path / "no-such-dir" / "t.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.name"]


def test_empty_trace_round_trip(tmp_path: Path) -> None:
    t = Trace(kind=[], addr=[], size=[], type_id=[], func_id=[])
    assert len(t) == 0 and t.counts() == {"alloc": 0, "free": 0, "gc": 0}
    assert Trace.load(t.save(tmp_path / "e.npz")) == t


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 2**64 - 1),
            st.integers(0, 2**64 - 1),
            st.integers(-1, 2),
            st.integers(-1, 1),
        ),
        max_size=40,
    ),
    st.lists(st.text(), min_size=3, max_size=3, unique=True),
    st.lists(st.text(), min_size=2, max_size=2, unique=True),
)
def test_round_trip_property(rows, types, funcs) -> None:
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
    t = Trace(*cols, types=types, funcs=funcs, meta={"source": None, "note": "ünïcödé ✓"})
    with tempfile.TemporaryDirectory() as d:  # hypothesis and tmp_path do not mix
        u = Trace.load(t.save(Path(d) / "p.npz"))
    assert u == t


def test_real_trace_round_trip(tmp_path: Path) -> None:
    path = SHARED / "gofmt-parser-gogc20.log.gz"
    if not path.exists():
        pytest.skip(f"shared trace {path} not available")
    t = import_log(path)
    out = t.save(tmp_path / "gofmt.trace.npz")
    assert Trace.load(out) == t
    assert out.stat().st_size < 1_000_000  # 52,195 events: compact


# ---------------------------------------------------------------------------------------
# Invalid files
# ---------------------------------------------------------------------------------------


def rewrite(path: Path, **changes) -> None:
    """Rewrite the .npz at ``path`` with some members replaced (None = removed)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def as_json(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return small_trace().save(tmp_path / "t.npz")


def meta_of(path: Path) -> dict:
    with np.load(path) as npz:
        return json.loads(npz["meta"].tobytes())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p.write_bytes(b"not a zip"), "cannot read it as a .npz archive"),
        (lambda p: p.write_bytes(b""), "cannot read it as a .npz archive"),
        (lambda p: np.save(open(p, "wb"), np.zeros(3)), "expected a .npz archive"),
        (lambda p: rewrite(p, strings=None), "missing member(s) strings"),
        (lambda p: rewrite(p, addr=np.zeros(5, np.int64)), "column 'addr' has dtype int64"),
        (lambda p: rewrite(p, size=np.zeros(4, np.uint64)), "member 'size.npy' (at byte"),
        (lambda p: rewrite(p, kind=np.full(5, 3, np.uint8)), "column 'kind' holds 3"),
        (lambda p: rewrite(p, type_id=np.full(5, 2, np.int32)), "column 'type_id' holds ids outside -1..1"),
        (lambda p: rewrite(p, func_id=np.full(5, -2, np.int32)), "column 'func_id' holds ids outside"),
        (
            lambda p: rewrite(p, strings=as_json({"types": [1], "funcs": []})),
            "strings['types'] is not a list",
        ),
        (lambda p: rewrite(p, meta=as_json([1])), "'meta' is not a JSON object"),
        (lambda p: rewrite(p, meta=np.frombuffer(b"{", np.uint8)), "unreadable member"),
        (lambda p: rewrite(p, meta=as_json({**meta_of(p), "format": "x"})), "meta['format'] is 'x'"),
        (lambda p: rewrite(p, meta=as_json({**meta_of(p), "version": "1"})), "meta['version'] is '1'"),
        (lambda p: rewrite(p, meta=as_json({**meta_of(p), "events": 9})), "meta['events'] is 9"),
        (
            lambda p: rewrite(p, meta=as_json({**meta_of(p), "counts": {"alloc": 5, "free": 0, "gc": 0}})),
            "meta['counts']",
        ),
    ],
)
def test_load_rejects_invalid_files(saved: Path, change, expected: str) -> None:
    change(saved)
    with pytest.raises(TraceFormatError) as info:
        Trace.load(saved)
    msg = str(info.value)
    assert msg.startswith(f"{saved}: ")
    assert expected in msg
    assert isinstance(info.value, HeapError) and isinstance(info.value, ValueError)


def test_load_refuses_newer_version(saved: Path) -> None:
    rewrite(saved, meta=as_json({**meta_of(saved), "version": FORMAT_VERSION + 1}))
    with pytest.raises(TraceFormatError, match=f"format version {FORMAT_VERSION + 1} is newer than this goheap reads"):
        Trace.load(saved)


def test_load_ignores_unknown_meta_keys(saved: Path) -> None:
    rewrite(saved, meta=as_json({**meta_of(saved), "future": [1, 2]}))
    assert Trace.load(saved).meta["future"] == [1, 2]


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Trace.load(tmp_path / "missing.npz")


def test_truncated_zip(saved: Path) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceFormatError, match="not a valid goheap trace file"):
        Trace.load(saved)


# ---------------------------------------------------------------------------------------
# goheap trace info
# ---------------------------------------------------------------------------------------


def test_cli_info(saved: Path) -> None:
    result = CliRunner().invoke(trace_group, ["info", str(saved)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == small_trace().summary()
    assert f"format goheap-trace version {FORMAT_VERSION}" in result.stdout


def test_cli_info_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    result = CliRunner().invoke(trace_group, ["info", str(bad)])
    assert result.exit_code == 2
    assert "not a valid goheap trace file" in result.stderr
    assert "Traceback" not in result.output
    result = CliRunner().invoke(trace_group, ["info", str(tmp_path / "missing.npz")])
    assert result.exit_code == 2 and "cannot read" in result.stderr


def _old_file(path: Path, t: Trace, version: int) -> Path:
    """``t`` written as goheap wrote version 1 (five columns) or 2 (every column as it is)."""
    names = ["kind", "addr", "size", "type_id", "func_id"]
    if version >= 2:
        names += ["noscan", "time_ns", "stack_id", "stack_frames", "stack_offsets", "gc_end_ns", "heap_series", "goal_series"]
    strings = {"types": list(t.types), "funcs": list(t.funcs), "frames": [list(f) for f in t.frames]}
    with open(path, "wb") as f:
        np.savez_compressed(f, **{n: getattr(t, n) for n in names}, strings=as_json(strings), meta=as_json({**t.meta, "version": version}))
    return path


def test_version_1_files_load_with_derived_columns(tmp_path: Path) -> None:
    t = small_trace()
    u = Trace.load(_old_file(tmp_path / "v1.npz", t, 1))
    assert u.meta["version"] == 1
    assert np.array_equal(u.addr, t.addr) and np.array_equal(u.type_id, t.type_id)
    assert u.noscan.tolist() == (t.type_id < 0).astype(int).tolist()
    assert (u.time_ns == -1).all() and (u.stack_id == -1).all() and u.n_stacks == 0 and not u.has_clock


def test_version_2_files_load_as_they_are(tmp_path: Path) -> None:
    t = Trace(
        kind=[KIND_ALLOC, KIND_GC, KIND_FREE], addr=[0xC000010000, 0, 0xC000010000], size=[16, 0, 16],
        type_id=[0, -1, -1], func_id=[-1, -1, -1], noscan=[0, 0, 0], time_ns=[5, 10, 20], stack_id=[0, -1, -1],
        types=("T",), frames=(("main.f", "/x/main.go", 3),), stack_frames=[0], stack_offsets=[0, 1],
        gc_end_ns=[15], meta={"source": "s"},
    )  # fmt: skip
    u = Trace.load(_old_file(tmp_path / "v2.npz", t, 2))
    assert u.meta["version"] == 2
    assert u == Trace(**{**_fields(t), "meta": dict(u.meta)})


def _fields(t: Trace) -> dict:
    import dataclasses

    return {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}


def test_stack_table_and_series_round_trip(tmp_path: Path) -> None:
    t = Trace(
        kind=[KIND_ALLOC, KIND_GC, KIND_FREE],
        addr=[0x10, 0, 0x10],
        size=[16, 0, 16],
        type_id=[-1, -1, -1],
        func_id=[-1, -1, -1],
        noscan=[1, 0, 1],
        time_ns=[5, 10, 20],
        stack_id=[1, -1, 0],
        frames=(("main.f", "/x/main.go", 3), ("main.main", "/x/main.go", 9)),
        stack_frames=[1, 0, 1],
        stack_offsets=[0, 1, 3],
        gc_end_ns=[15],
        heap_series=[(10, 1, 4096)],
        goal_series=[(10, 1, 8192)],
        meta={"source": "s"},
    )
    assert t.stack(1) == [("main.f", "/x/main.go", 3), ("main.main", "/x/main.go", 9)] and t.has_clock
    u = Trace.load(t.save(tmp_path / "s.npz"))
    assert u == t and u.heap_series["bytes"].tolist() == [4096]
    with pytest.raises(ValueError, match="stack_offsets"):
        Trace(kind=[0], addr=[1], size=[1], type_id=[-1], func_id=[-1], stack_frames=[0], stack_offsets=[0, 2], frames=(("f", "", 0),))
    with pytest.raises(ValueError, match="'stack_id' holds ids outside"):
        Trace(kind=[0], addr=[1], size=[1], type_id=[-1], func_id=[-1], stack_id=[3])
    with pytest.raises(ValueError, match="gc_end_ns"):
        Trace(kind=[2], addr=[0], size=[0], type_id=[-1], func_id=[-1], gc_end_ns=[1, 2])


def test_encoded_members_survive_any_blocks(tmp_path: Path) -> None:
    """Columns streamed in blocks that cut their items, with tables that need int16 and
    int32 ids, and addresses and times that go down as well as up, come back exactly."""
    from goheap.trace.tracefile import write_trace_file

    rng = np.random.default_rng(7)
    n = 5000
    t = Trace(
        kind=rng.integers(0, 2, n), addr=rng.integers(0, 2**64 - 1, n, dtype=np.uint64), size=rng.integers(1, 1 << 40, n),
        type_id=rng.integers(-1, 300, n), func_id=rng.integers(-1, 40000, n), time_ns=rng.integers(-1, 1 << 62, n),
        types=tuple(f"T{i}" for i in range(300)), funcs=tuple(f"f{i}" for i in range(40000)), meta={"source": None},
    )  # fmt: skip

    def blocks(a: np.ndarray, size: int = 7):
        data = a.tobytes()
        return [data[i : i + size] for i in range(0, len(data), size)]

    names = ("kind", "addr", "size", "type_id", "func_id", "noscan", "time_ns", "stack_id")
    members = {name: (n, blocks(getattr(t, name))) for name in names}
    path = write_trace_file(tmp_path / "b.npz", members, t.types, t.funcs, dict(t.meta))
    with np.load(path) as npz:
        assert (npz["type_id"].dtype, npz["func_id"].dtype) == (np.int16, np.int32)
    assert Trace.load(path) == t
    members["type_id"] = (n, blocks(np.full(n, 300, np.int32)))
    with pytest.raises(ValueError, match=r"'type_id' holds ids outside -1\.\.299"):
        write_trace_file(tmp_path / "c.npz", members, t.types, t.funcs, dict(t.meta))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.npz"]
