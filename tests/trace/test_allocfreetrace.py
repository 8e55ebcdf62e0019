"""Tests of the allocfreetrace log importer and the ``goheap trace import`` command."""

from __future__ import annotations

import dataclasses
import gzip
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from goheap.errors import HeapError
from goheap.trace import (
    KIND_ALLOC,
    KIND_FREE,
    KIND_GC,
    Trace,
    TraceFormatError,
    TraceTruncatedWarning,
    import_log,
    import_log_to_file,
    parse_lines,
)
from goheap.trace.cli import default_output, trace_group

SHARED = Path(__file__).resolve().parents[2] / "../shared/data/go1.19-traces"

# ---------------------------------------------------------------------------------------
# Building synthetic logs
# ---------------------------------------------------------------------------------------

RUNTIME_FRAMES = [
    "runtime.mallocgc(0x10, 0x48f5e0, 0x1)",
    "\t/usr/lib/go-1.19/src/runtime/malloc.go:1131 +0x7b1 fp=0xc0000aa560 sp=0xc0000aa4e8 pc=0x40bd11",
    "runtime.newobject(0xc0000aa5b0?)",
    "\t/usr/lib/go-1.19/src/runtime/malloc.go:1202 +0x27 fp=0xc0000aa588 sp=0xc0000aa560 pc=0x40bf47",
]


def frames(*funcs: str) -> list[str]:
    """Function/file line pairs for the given functions, after the runtime's own frames."""
    out = list(RUNTIME_FRAMES)
    for i, f in enumerate(funcs):
        out += [f"{f}(0x{i:x}?)", f"\t/src/x/{i}.go:{10 + i} +0x{i + 1:x}"]
    return out


def alloc(addr: int, size: int, typ: str | None = None, *funcs: str) -> str:
    head = f"tracealloc(0x{addr:x}, 0x{size:x}" + (f", {typ})" if typ is not None else ")")
    return "\n".join([head, "goroutine 1 [running]:", *frames(*funcs)]) + "\n\n"


def free(addr: int, size: int, *funcs: str) -> str:
    return (
        "\n".join([f"tracefree(0x{addr:x}, 0x{size:x})", "goroutine 0 [idle]:", *frames(*funcs)])
        + "\n\n"
    )


def gc() -> str:
    return (
        "tracegc()\n\n"
        "goroutine 5 [garbage collection]:\n"
        "runtime.gcMarkTermination()\n"
        "\t/usr/lib/go-1.19/src/runtime/mgc.go:943 +0x173\n\n"
        "goroutine 1 [runnable]:\n"
        "main.work(0x0?)\n"
        "\t/tmp/main.go:12 +0xaf\n"
        "created by main.main\n"
        "\t/tmp/main.go:20 +0x25\n"
        "end tracegc\n\n"
    )


def write(tmp_path: Path, text: str, name: str = "trace.log", *, gz: bool = False) -> Path:
    p = tmp_path / name
    data = text.encode("utf-8")
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


def quiet_import(path: Path, **kw) -> Trace:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        return import_log(path, **kw)


BASIC = (
    alloc(0xC000010000, 0x10, "*main.Node", "main.bottomUp", "main.main")
    + alloc(0xC000010010, 0x8)  # no type: a no-pointer allocation, runtime-only stack
    + "hello from the program\n"  # program output between events
    + free(0xC000010000, 0x10)
    + gc()
    + "traceroute is not an event\n"
    + alloc(0xC000020000, 0x20, "map[string]int", "go/parser.(*parser).next")
    + free(0xC000020000, 0x20, "main.bottomUp")
)


# ---------------------------------------------------------------------------------------
# Synthetic logs
# ---------------------------------------------------------------------------------------


def test_basic_events(tmp_path: Path) -> None:
    t = quiet_import(write(tmp_path, BASIC))
    assert len(t) == 6
    assert t.kind.tolist() == [KIND_ALLOC, KIND_ALLOC, KIND_FREE, KIND_GC, KIND_ALLOC, KIND_FREE]
    assert t.addr.tolist() == [0xC000010000, 0xC000010010, 0xC000010000, 0, 0xC000020000, 0xC000020000]
    assert t.size.tolist() == [16, 8, 16, 0, 32, 32]
    assert [t.type_name(i) for i in range(6)] == ["*main.Node", None, None, None, "map[string]int", None]
    assert [t.func_name(i) for i in range(6)] == [
        "main.bottomUp",
        None,
        None,
        None,
        "go/parser.(*parser).next",
        "main.bottomUp",
    ]
    assert t.types == ("*main.Node", "map[string]int")
    assert t.funcs == ("main.bottomUp", "go/parser.(*parser).next")
    assert t.counts() == {"alloc": 3, "free": 2, "gc": 1}
    assert (t.n_alloc, t.n_free, t.n_gc) == (3, 2, 1)
    assert t.meta["source"] == "trace.log"
    assert t.meta["log_bytes"] == len(BASIC.encode())
    assert t.meta["truncated"] is False
    assert t.meta["compressed"] is False
    assert t.addr.dtype == np.uint64 and t.type_id.dtype == np.int32


@pytest.mark.parametrize(
    "typ",
    [
        "map[string]int",
        "struct { a int; b *main.T }",
        "struct { F uintptr; f func(*main.reporter) error; next chan *main.reporterState }",
        "func(int, string) (bool, error)",
        "[]struct { x, y int }",
        "map[[2]string]struct { a, b (int) }",
        "interface {}",
        "*[8]map[string][]*main.T",
    ],
)
def test_type_names_with_spaces_commas_brackets(tmp_path: Path, typ: str) -> None:
    t = quiet_import(write(tmp_path, alloc(0x1000, 0x30, typ, "main.f") + alloc(0x2000, 8, typ)))
    assert t.types == (typ,)
    assert t.type_id.tolist() == [0, 0]
    assert t.size.tolist() == [0x30, 8]


def test_function_attribution(tmp_path: Path) -> None:
    log = (
        # inlined runtime frame "(...)" with no +0x offset, then a generic function
        "tracealloc(0x10, 0x10)\n"
        "goroutine 7 [running]:\n"
        "runtime.mallocgc(0x8, 0x0, 0x0)\n"
        "\t/go/src/runtime/malloc.go:1131 +0x7b1\n"
        "runtime.(*randomOrder).reset(...)\n"
        "\t/go/src/runtime/proc.go:6239\n"
        "main.Map[...](0xc000010000?, {0x1, 0x2})\n"
        "\t/tmp/main.go:5 +0x1\n"
        "main.main()\n"
        "\t/tmp/main.go:9 +0x1\n\n"
        # runtime-only stack with a "created by" line naming a user function
        "tracealloc(0x20, 0x10)\n"
        "goroutine 8 [running]:\n"
        "runtime.goexit()\n"
        "\t/go/src/runtime/asm_amd64.s:1594 +0x1\n"
        "created by main.(*sequencer).Add\n"
        "\t/tmp/gofmt.go:149 +0x1b3\n\n"
        # elided frames and a package path with slashes and dots
        "tracealloc(0x30, 0x10)\n"
        "goroutine 9 [running]:\n"
        "runtime.newobject(0x0?)\n"
        "\t/go/src/runtime/malloc.go:1202 +0x27\n"
        "...additional frames elided...\n"
        "gopkg.in/yaml%2ev3.(*decoder).unmarshal(0x1)\n"
        "\t/x/decode.go:1 +0x2\n\n"
        # runtime/debug is not package runtime
        "tracealloc(0x40, 0x10)\n"
        "goroutine 9 [running]:\n"
        "runtime/debug.Stack()\n"
        "\t/go/src/runtime/debug/stack.go:24 +0x65\n\n"
    )
    t = quiet_import(write(tmp_path, log))
    assert [t.func_name(i) for i in range(len(t))] == [
        "main.Map[...]",
        None,
        "gopkg.in/yaml%2ev3.(*decoder).unmarshal",
        "runtime/debug.Stack",
    ]


def test_crlf_and_uppercase_hex(tmp_path: Path) -> None:
    text = alloc(0xABC, 0x10, "main.T", "main.f").replace("0xabc", "0xABC").replace("\n", "\r\n")
    t = quiet_import(write(tmp_path, text))
    assert t.addr.tolist() == [0xABC]
    assert t.types == ("main.T",)
    assert t.funcs == ("main.f",)


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    p = tmp_path / "bad.log"
    p.write_bytes(alloc(0x10, 8, "main.T\xff", "main.f").encode("latin-1"))
    t = quiet_import(p)
    assert t.types == ("main.T\ufffd",)


def test_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    plain = quiet_import(write(tmp_path, BASIC, "plain.gz"))
    packed = quiet_import(write(tmp_path, BASIC, "packed.log", gz=True))
    assert packed.meta["compressed"] is True and plain.meta["compressed"] is False
    for name in ("kind", "addr", "size", "type_id", "func_id"):
        assert np.array_equal(getattr(plain, name), getattr(packed, name))
    assert packed.types == plain.types and packed.funcs == plain.funcs
    assert packed.meta["log_bytes"] == plain.meta["log_bytes"] == len(BASIC.encode())


def test_small_chunks_give_the_same_result(tmp_path: Path) -> None:
    text = "".join(alloc(0x1000 + 16 * i, 16, f"T{i % 5}", f"main.f{i % 3}") for i in range(50))
    text += gc() + "".join(free(0x1000 + 16 * i, 16) for i in range(50))
    p = write(tmp_path, text)
    big = quiet_import(p)
    small = quiet_import(p, chunk_events=7)
    assert big == small
    assert len(big) == 101
    assert big.addr[:50].tolist() == [0x1000 + 16 * i for i in range(50)]


def test_progress_reports_bytes_read(tmp_path: Path) -> None:
    text = "".join(alloc(0x1000 + 16 * i, 16, None, "main.f") for i in range(9000))
    for gz in (False, True):
        p = write(tmp_path, text, f"p{gz}.log", gz=gz)
        seen: list[int] = []
        t = quiet_import(p, progress=seen.append)
        assert len(t) == 9000
        assert len(seen) >= 3  # every 4096 events, plus the end
        assert seen == sorted(seen)
        assert seen[-1] == p.stat().st_size


def test_parse_lines_streaming_core() -> None:
    lines = BASIC.splitlines(keepends=True)
    t = parse_lines(iter(lines), source="mem")
    assert len(t) == 6
    assert t.meta["source"] == "mem"
    assert t.meta["log_lines"] == len(lines)


# ---------------------------------------------------------------------------------------
# Malformed, empty and truncated logs
# ---------------------------------------------------------------------------------------


def line_of(text: str, needle: str) -> int:
    return text[: text.rindex(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (
            "tracealloc(0xZZ, 0x10)\n",
            "malformed tracealloc line: expected 'tracealloc(0xADDR, 0xSIZE[, TYPE])'",
        ),
        ("tracealloc(0x10)\n", "malformed tracealloc line"),
        ("tracealloc(0x10, 16, main.T)\n", "malformed tracealloc line"),
        ("tracealloc(0x10, 0x10, )\n", "malformed tracealloc line"),
        ("tracealloc(0x10, 0x10, main.T\n", "malformed tracealloc line"),
        ("tracefree(0x10)\n", "malformed tracefree line: expected 'tracefree(0xADDR, 0xSIZE)'"),
        ("tracegc(1)\n", "malformed tracegc line: expected 'tracegc()'"),
    ],
)
def test_malformed_event_line(tmp_path: Path, bad: str, expected: str) -> None:
    text = BASIC + bad + "goroutine 1 [running]:\nmain.f()\n\t/x.go:1 +0x1\n\n"
    p = write(tmp_path, text)
    with pytest.raises(TraceFormatError) as info:
        import_log(p)
    msg = str(info.value)
    assert msg.startswith(f"trace.log:{line_of(text, bad)}: ")
    assert expected in msg
    assert repr(bad.rstrip("\n")) in msg  # the offending text is quoted
    assert isinstance(info.value, ValueError) and isinstance(info.value, HeapError)


def test_missing_goroutine_header(tmp_path: Path) -> None:
    text = alloc(0x10, 8) + "tracealloc(0x20, 0x8)\nmain.f()\n\t/x.go:1\n\n"
    n = line_of(text, "main.f()")
    with pytest.raises(TraceFormatError, match=rf"^trace\.log:{n}: expected a goroutine header"):
        import_log(write(tmp_path, text))


def test_event_line_inside_a_stack(tmp_path: Path) -> None:
    text = alloc(0x10, 8, None, "main.f").rstrip("\n") + "\n" + alloc(0x20, 8)
    nested = r"^trace\.log:9: unexpected event line inside the event that starts at line 1"
    with pytest.raises(TraceFormatError, match=nested):
        import_log(write(tmp_path, text))
    text = "tracegc()\n\ngoroutine 1 [running]:\nmain.f()\n\t/x.go:1\n\n" + alloc(0x20, 8)
    with pytest.raises(TraceFormatError, match=r"^trace\.log:7: .*expected 'end tracegc'"):
        import_log(write(tmp_path, text))


@pytest.mark.parametrize("text", ["", "\n\n", "hello\nworld\n", "goroutine 1 [running]:\nmain.f()\n"])
def test_no_events(tmp_path: Path, text: str) -> None:
    for gz in (False, True):
        with pytest.raises(TraceFormatError, match=r"^trace\.log: no allocfreetrace events found"):
            import_log(write(tmp_path, text, gz=gz))


def test_only_a_partial_event(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an error, not also a warning
        with pytest.raises(TraceFormatError, match=r"no allocfreetrace events found.*mid-event at line 1"):
            import_log(write(tmp_path, "tracealloc(0x10, 0x8)\ngoroutine 1 [running]:\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        import_log(tmp_path / "nope.log")


@pytest.mark.parametrize(
    ("tail", "n_complete", "where"),
    [
        ("tracealloc(0x90, 0x8)\n", 6, "after an event line, before its stack"),
        ("tracealloc(0x90, 0x8", 6, "in the middle of an event line"),
        ("tracealloc(0x90, 0x8)\ngorout", 6, "in the goroutine header"),
        ("tracealloc(0x90, 0x8)\ngoroutine 1 [running]:\n", 6, "in the event's stack"),
        (alloc(0x90, 8, None, "main.f").rstrip("\n"), 6, "in the event's stack"),
        (alloc(0x90, 8, None, "main.f")[:-30], 6, "in the event's stack"),
        (alloc(0x90, 8)[:-1], 6, "in the event's stack"),
        ("tracegc()\n\ngoroutine 1 [running]:\n", 6, "in the tracegc event"),
        ("tracegc(", 6, "in the middle of a tracegc line"),
    ],
)
def test_truncated_log(tmp_path: Path, tail: str, n_complete: int, where: str) -> None:
    text = BASIC + tail
    p = write(tmp_path, text)
    with pytest.warns(TraceTruncatedWarning) as record:
        t = import_log(p)
    assert len(record) == 1
    msg = str(record[0].message)
    assert msg.startswith(f"trace.log:{line_of(text, tail)}: log truncated {where}")
    assert record[0].filename == __file__  # attributed to the caller
    assert len(t) == n_complete
    assert t.meta["truncated"] is True
    full = quiet_import(write(tmp_path, BASIC, "full.log"))
    assert np.array_equal(t.addr, full.addr) and t.types == full.types and t.funcs == full.funcs


def test_gzip_cut_short(tmp_path: Path) -> None:
    text = "".join(
        alloc(0xC000000000 + 16 * i, 16, f"main.T{i % 7}", f"main.f{i % 11}") + (gc() if i % 500 == 0 else "")
        for i in range(3000)
    )
    data = gzip.compress(text.encode(), compresslevel=1)
    full = quiet_import(write(tmp_path, text, "full.log"))
    assert len(full) == 3006
    p = tmp_path / "cut.log.gz"
    p.write_bytes(data[: len(data) // 2])
    cut = r"^cut\.log\.gz:\d+: log truncated in a compressed stream cut short"
    with pytest.warns(TraceTruncatedWarning, match=cut):
        t = import_log(p)
    assert 0 < len(t) < len(full)
    assert t.meta["truncated"] is True
    for name in ("kind", "addr", "size"):
        assert np.array_equal(getattr(t, name), getattr(full, name)[: len(t)])
    assert [t.type_name(i) for i in range(len(t))] == [full.type_name(i) for i in range(len(t))]
    assert [t.func_name(i) for i in range(len(t))] == [full.func_name(i) for i in range(len(t))]


def test_gzip_corrupt(tmp_path: Path) -> None:
    text = "".join(alloc(0x1000 + 16 * i, 16, "main.T", "main.f") for i in range(3000))
    data = bytearray(gzip.compress(text.encode()))
    data[-8] ^= 0xFF  # CRC of the member
    p = tmp_path / "corrupt.log.gz"
    p.write_bytes(bytes(data))
    with pytest.raises(TraceFormatError, match=r"^corrupt\.log\.gz:\d+: corrupt gzip stream"):
        import_log(p)


# ---------------------------------------------------------------------------------------
# The real Go 1.19 traces (counts checked independently with zcat | grep / awk)
# ---------------------------------------------------------------------------------------

REAL = {
    "binary-trees-10-gogc20.log.gz": dict(
        alloc=131861,
        free=89818,
        gc=2,
        gc_index=[29828, 119764],
        lines=6518383,
        log_bytes=332191019,
        alloc_bytes=2151488,
        free_bytes=1437656,
        typed_allocs=131854,
        n_types=24,
        n_funcs=14,
        last=(KIND_ALLOC, 0xC000080060, 0x60, None, "fmt.(*buffer).writeString"),
        top_func=("main.bottomUp", 131761, 64207),
    ),
    "gofmt-parser-gogc20.log.gz": dict(
        alloc=38303,
        free=13889,
        gc=3,
        gc_index=[5218, 23713, 37028],
        lines=2755153,
        log_bytes=200874884,
        alloc_bytes=2055616,
        free_bytes=593136,
        typed_allocs=34218,
        n_types=124,
        n_funcs=136,
        last=(KIND_ALLOC, 0xC0001B2000, 0x20000, None, "bytes.growSlice"),
        top_func=("go/parser.(*parser).parseIdent", 6268, 0),
    ),
}

FIRST_EVENTS = [
    (KIND_ALLOC, 0xC000024000, 0x10, "*runtime.p", None),
    (KIND_ALLOC, 0xC000026000, 0x2500, "runtime.p", None),
    (KIND_ALLOC, 0xC000028500, 0x2500, "runtime.p", None),
]


@pytest.fixture(scope="module", params=sorted(REAL))
def real_trace(request: pytest.FixtureRequest) -> tuple[str, Trace]:
    path = SHARED / request.param
    if not path.exists():
        pytest.skip(f"shared trace {path} not available")
    return request.param, quiet_import(path)


def test_real_trace(real_trace: tuple[str, Trace]) -> None:
    name, t = real_trace
    want = REAL[name]
    assert t.counts() == {"alloc": want["alloc"], "free": want["free"], "gc": want["gc"]}
    assert len(t) == want["alloc"] + want["free"] + want["gc"]
    assert np.flatnonzero(t.kind == KIND_GC).tolist() == want["gc_index"]
    assert t.meta["log_lines"] == want["lines"]
    assert t.meta["log_bytes"] == want["log_bytes"]
    assert t.meta["truncated"] is False and t.meta["compressed"] is True
    assert t.bytes_by_kind() == {"alloc": want["alloc_bytes"], "free": want["free_bytes"]}
    assert int(np.count_nonzero((t.kind == KIND_ALLOC) & (t.type_id >= 0))) == want["typed_allocs"]
    assert len(t.types) == want["n_types"] and len(t.funcs) == want["n_funcs"]
    assert not np.any(t.type_id[t.kind != KIND_ALLOC] >= 0)
    assert not np.any(t.addr[t.kind == KIND_GC])

    def event(i: int) -> tuple:
        return (int(t.kind[i]), int(t.addr[i]), int(t.size[i]), t.type_name(i), t.func_name(i))

    assert [event(i) for i in range(3)] == FIRST_EVENTS
    assert event(3) == (KIND_ALLOC, event(3)[1], 0x10, None, None)  # no-pointer, runtime-only
    assert event(len(t) - 1) == want["last"]
    fname, n_alloc, n_free = want["top_func"]
    f = t.funcs.index(fname)
    assert int(np.count_nonzero((t.func_id == f) & (t.kind == KIND_ALLOC))) == n_alloc
    assert int(np.count_nonzero((t.func_id == f) & (t.kind == KIND_FREE))) == n_free


def test_real_trace_complex_types(real_trace: tuple[str, Trace]) -> None:
    name, t = real_trace
    if name.startswith("gofmt"):
        assert (
            "struct { F uintptr; f func(*main.reporter) error; r *main.reporter; "
            "next chan *main.reporterState; s *main.sequencer; weight int64 }"
        ) in t.types
    else:
        assert "struct { F uintptr; .autotmp_2 chan int }" in t.types
    assert all(not s.endswith(")") or s.count("(") == s.count(")") for s in t.types)


# ---------------------------------------------------------------------------------------
# goheap trace import
# ---------------------------------------------------------------------------------------


def test_default_output() -> None:
    assert default_output("/a/run.log.gz") == Path("/a/run.trace.npz")
    assert default_output("run.log") == Path("run.trace.npz")
    assert default_output("run.gz") == Path("run.trace.npz")
    assert default_output("run") == Path("run.trace.npz")


def test_cli_import(tmp_path: Path) -> None:
    p = write(tmp_path, BASIC, "prog.log.gz", gz=True)
    result = CliRunner().invoke(trace_group, ["import", str(p)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "prog.trace.npz"
    assert out.exists()
    assert "6 events: 3 allocs (56 B), 2 frees (48 B), 1 GC points" in result.stdout
    assert "2 distinct types, 2 distinct allocating functions" in result.stdout
    assert "MB/s" in result.stdout
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    assert Trace.load(out) == quiet_import(p)

    other = tmp_path / "x.npz"
    result = CliRunner().invoke(trace_group, ["import", str(p), "-o", str(other)])
    assert result.exit_code == 0 and other.exists()


def test_cli_import_errors(tmp_path: Path) -> None:
    bad = write(tmp_path, BASIC + "tracefree(0x1)\n", "bad.log")
    result = CliRunner().invoke(trace_group, ["import", str(bad)])
    assert result.exit_code == 2
    n = line_of(BASIC + "tracefree(0x1)\n", "tracefree(0x1)")
    assert f"bad.log:{n}: malformed tracefree line" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "bad.trace.npz").exists()

    result = CliRunner().invoke(trace_group, ["import", str(tmp_path / "missing.log")])
    assert result.exit_code == 2 and "cannot read" in result.stderr

    empty = write(tmp_path, "", "empty.log")
    result = CliRunner().invoke(trace_group, ["import", str(empty)])
    assert result.exit_code == 2 and "no allocfreetrace events found" in result.stderr


def test_cli_import_truncated(tmp_path: Path) -> None:
    p = write(tmp_path, BASIC + "tracealloc(0x90, 0x8)\n", "cut.log")
    result = CliRunner().invoke(trace_group, ["import", str(p)])
    assert result.exit_code == 0
    assert "warning: cut.log:" in result.stderr and "truncated" in result.stderr
    assert len(Trace.load(tmp_path / "cut.trace.npz")) == 6


# ---------------------------------------------------------------------------------------
# Streaming import into a file: pipes, stdin, nothing written on error, flat memory
# ---------------------------------------------------------------------------------------


def test_import_log_to_file_matches_import_log(tmp_path: Path) -> None:
    text = "".join(alloc(0x1000 + 16 * i, 16, f"T{i % 5}", f"main.f{i % 3}") for i in range(50))
    text += gc() + "".join(free(0x1000 + 16 * i, 16) for i in range(50))
    for gz in (False, True):
        p = write(tmp_path, text, f"x{gz}.log", gz=gz)
        out = tmp_path / f"x{gz}.trace.npz"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = import_log_to_file(p, out, chunk_events=7)  # many spilled chunks
        assert result.path == out
        t = Trace.load(out)
        assert t == quiet_import(p)
        assert result.summary() == t.summary()
        assert dict(result.meta) == dict(t.meta)
        assert sorted(f.name for f in tmp_path.iterdir() if f.name.startswith(".")) == []


def test_import_from_a_pipe(tmp_path: Path) -> None:
    """Standard input and FIFOs are read forwards only (gzip found by peeking)."""
    for gz in (False, True):
        data = gzip.compress(BASIC.encode()) if gz else BASIC.encode()
        fifo = tmp_path / f"pipe{gz}"
        os.mkfifo(fifo)
        writer = threading.Thread(target=fifo.write_bytes, args=(data,))
        writer.start()
        t = quiet_import(fifo)
        writer.join()
        assert t.meta["compressed"] is gz and t.meta["log_bytes"] == len(BASIC.encode())
        assert np.array_equal(t.addr, quiet_import(write(tmp_path, BASIC)).addr)

    code = (
        "import sys; from goheap.trace.allocfreetrace import import_log_to_file; "
        "print(import_log_to_file('-', sys.argv[1]).summary())"
    )
    out = tmp_path / "stdin.trace.npz"
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)], input=BASIC.encode(), capture_output=True, check=True
    )
    assert done.stdout.decode().startswith("<stdin>: 6 events: 3 allocs")
    assert Trace.load(out).meta["source"] == "<stdin>"


def test_cli_import_stdin(tmp_path: Path) -> None:
    out = tmp_path / "s.trace.npz"
    result = CliRunner().invoke(trace_group, ["import", "-", "-o", str(out)], input=BASIC)
    assert result.exit_code == 0, result.output
    assert len(Trace.load(out)) == 6
    result = CliRunner().invoke(trace_group, ["import", "-"], input=BASIC)
    assert result.exit_code == 2 and "needs -o OUTPUT" in result.stderr


def test_cli_import_malformed_leaves_existing_output_alone(tmp_path: Path) -> None:
    out = tmp_path / "keep.trace.npz"
    out.write_bytes(b"previous contents")
    bad = write(tmp_path, BASIC * 40 + "tracealloc(0x1, 2)\n", "bad.log")
    result = CliRunner().invoke(trace_group, ["import", str(bad), "-o", str(out)])
    assert result.exit_code == 2 and "malformed tracealloc line" in result.stderr
    assert out.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.log", "keep.trace.npz"]


def test_cli_import_messages(tmp_path: Path) -> None:
    empty = write(tmp_path, "", "empty.log")
    result = CliRunner().invoke(trace_group, ["import", str(empty)])
    assert result.exit_code == 2
    assert "empty.log: no allocfreetrace events found: the log is empty" in result.stderr
    result = CliRunner().invoke(trace_group, ["import", str(empty), "-o", str(tmp_path / "no" / "x.npz")])
    assert result.exit_code == 2 and "no such directory" in result.stderr
    assert "Traceback" not in result.output


# A generator of synthetic logs, run as its own process so that its memory is not counted.
# Argument 1: number of events; argument 2: frames per stack (1 is the densest log).
GENERATOR = r"""
import sys
n, depth = int(sys.argv[1]), int(sys.argv[2])
stack = "".join(
    f"main.level{d}(0xc000123456?, 0x{d:x})\n\t/home/user/go/src/example.com/prog/level{d}.go:{d + 10}"
    f" +0x{d + 1:x} fp=0xc0000aa560 sp=0xc0000aa4e8 pc=0x40bd11\n"
    for d in range(depth)
)
events = []
for i in range(500):
    a = 0xC000010000 + 32 * i
    events.append(f"tracealloc(0x{a:x}, 0x20, *main.Node)\ngoroutine 1 [running]:\n{stack}\n")
    events.append(f"tracefree(0x{a:x}, 0x20)\ngoroutine 0 [idle]:\n{stack}\n")
block = "".join(events).encode()
out = sys.stdout.buffer
for _ in range(n // 1000):
    out.write(block)
"""

# Import from standard input, then report the peak RSS (kB) of this process.
IMPORTER = r"""
import resource, sys
from goheap.trace.allocfreetrace import import_log_to_file
chunk = int(sys.argv[2])
result = import_log_to_file("-", sys.argv[1], **({"chunk_events": chunk} if chunk else {}))
print(result.meta["events"], result.meta["log_bytes"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def import_generated(tmp_path: Path, n: int, depth: int, chunk_events: int = 0) -> tuple[int, int, int]:
    """Import a generated log of n events through a pipe: (events, log bytes, peak RSS kB)."""
    out = tmp_path / f"gen{n}.trace.npz"
    gen = subprocess.Popen([sys.executable, "-c", GENERATOR, str(n), str(depth)], stdout=subprocess.PIPE)
    try:
        done = subprocess.run(
            [sys.executable, "-c", IMPORTER, str(out), str(chunk_events)],
            stdin=gen.stdout,
            capture_output=True,
            check=True,
        )
    finally:
        assert gen.stdout is not None
        gen.stdout.close()
        gen.wait()
    events, log_bytes, peak = (int(x) for x in done.stdout.split())
    assert events == n
    out.unlink()
    return events, log_bytes, peak


def test_streaming_import_memory_is_flat(tmp_path: Path) -> None:
    """8x the events, same peak RSS (holding the events would cost 8+ MB more)."""
    _, small_bytes, small_peak = import_generated(tmp_path, 50_000, 1, chunk_events=8192)
    _, big_bytes, big_peak = import_generated(tmp_path, 400_000, 1, chunk_events=8192)
    assert big_bytes > 7 * small_bytes
    assert big_peak - small_peak < 3 * 1024, (small_peak, big_peak)


@pytest.mark.slow
def test_streaming_import_of_gigabytes_is_flat(tmp_path: Path) -> None:
    """A 2 GB log (realistic 1.4 KB events, default chunking) peaks no higher than 0.5 GB."""
    _, small_bytes, small_peak = import_generated(tmp_path, 375_000, 10)
    _, big_bytes, big_peak = import_generated(tmp_path, 1_500_000, 10)
    assert big_bytes > 2 * 10**9
    assert big_peak - small_peak < 4 * 1024, (small_peak, big_peak)


def test_line_breaks_and_many_distinct_stacks(tmp_path: Path) -> None:
    """\\r\\n and \\r break lines as \\n does (as Python's text mode reads them); thousands of
    distinct stacks, types and functions (past the scanner's first tables) keep their
    order of first appearance."""
    n = 6000
    text = "".join(alloc(0xC000000000 + 16 * i, 16, f"main.T{i}", f"main.f{i}", "main.main") for i in range(n))
    t = quiet_import(write(tmp_path, text))
    assert len(t) == n and t.types == tuple(f"main.T{i}" for i in range(n))
    assert t.funcs == tuple(f"main.f{i}" for i in range(n)) and t.n_stacks == n
    assert t.stack(n - 1)[0] == (f"main.f{n - 1}", "/src/x/0.go", 10)
    for eol in ("\r\n", "\r"):
        u = quiet_import(write(tmp_path, BASIC.replace("\n", eol), f"eol{len(eol)}.log"))
        v = quiet_import(write(tmp_path, BASIC, "lf.log"))
        same = {f.name: getattr(u, f.name) for f in dataclasses.fields(u) if f.name != "meta"}
        assert Trace(**same, meta=v.meta) == v and u.meta["log_lines"] == v.meta["log_lines"]


@pytest.mark.nojit
def test_import_interpreted_smoke(tmp_path: Path) -> None:
    """The scanner gives the same events interpreted (CI runs this with NUMBA_DISABLE_JIT=1)."""
    t = import_log(write(tmp_path, BASIC), chunk_events=4)
    assert t.kind.tolist() == [KIND_ALLOC, KIND_ALLOC, KIND_FREE, KIND_GC, KIND_ALLOC, KIND_FREE]
    assert [t.type_name(i) for i in range(6)] == ["*main.Node", None, None, None, "map[string]int", None]
    assert [t.func_name(i) for i in range(6)] == ["main.bottomUp", None, None, None, "go/parser.(*parser).next", "main.bottomUp"]
    assert t.stack(int(t.stack_id[0]))[:2] == [("main.bottomUp", "/src/x/0.go", 10), ("main.main", "/src/x/1.go", 11)]
