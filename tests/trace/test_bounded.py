"""Hostile files: bounded memory, goheap errors naming the file and offset, inputs never clobbered.

The huge inputs are made at test time and are small on disk (gzip, sparse files); the
commands run as real subprocesses, whose peak RSS is measured with wait4.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from goheap import cli
from goheap.trace import Trace, TraceFormatError, import_log
from goheap.trace.bounded import LineGuard

pytestmark = pytest.mark.nojit

EVENT = "tracealloc(0xc000010000, 0x10, *main.Node)\ngoroutine 1 [running]:\nmain.f()\n\t/tmp/main.go:3\n\n"
#: A command that reads hostile input may use this much memory at most (Python, numpy and
#: numba loaded take about 150 MB; an unbounded read of the inputs below takes GBs).
RSS_LIMIT = 400 << 20


# The child reports its own peak RSS (VmHWM of its address space, which starts afresh at
# exec): wait4's ru_maxrss would include the pytest process it was forked from.
_MEASURED = (
    "import atexit, os, runpy, sys\n"
    "def hwm():\n"
    "    kb = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    "    os.write(2, ('\\nVmHWM ' + kb + '\\n').encode())\n"
    "atexit.register(hwm)\n"
    "sys.argv = ['goheap', *sys.argv[1:]]\n"
    "runpy.run_module('goheap.cli', run_name='__main__')\n"
)


def run_goheap(*args: str, stdin=None, cwd: Path | None = None) -> tuple[int, str, int]:
    """(exit status, stderr, peak RSS in bytes) of ``goheap ARGS`` run in a subprocess."""
    p = subprocess.run(
        [sys.executable, "-c", _MEASURED, *args],
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=cwd,
        check=False,
    )
    err, _, hwm = p.stderr.decode().rpartition("\nVmHWM ")
    return p.returncode, err.lstrip("\n"), int(hwm.split()[0]) * 1024


def test_line_guard_stops_at_the_first_long_line() -> None:
    data = (b"short\n" * 3) + b"x" * 100 + b"\nend\n"
    assert LineGuard(io.BytesIO(data), "t.log", limit=200).read() == data
    with pytest.raises(TraceFormatError, match=r"t\.log:4: the line starting at byte 18 is longer than 50 bytes"):
        LineGuard(io.BytesIO(data), "t.log", limit=50).read()
    big = b"a\n" * 40 + b"y" * 70 + b"\n"  # a long line inside one chunk larger than the limit
    with pytest.raises(TraceFormatError, match="t.log:41: the line starting at byte 80 "):
        LineGuard(io.BytesIO(big), "t.log", limit=60).read()


@pytest.mark.slow
def test_import_of_dev_zero_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    status, err, rss = run_goheap("trace", "import", "/dev/zero", "-o", str(tmp_path / "z.npz"))
    assert status == 2 and err.startswith("goheap trace import: error: zero:1: the line starting at byte 0 ")
    assert rss < RSS_LIMIT and list(tmp_path.iterdir()) == []
    with open("/dev/zero", "rb") as zero:
        status, err, rss = run_goheap("trace", "import", "-", "-o", str(tmp_path / "z.npz"), stdin=zero)
    assert status == 2 and "<stdin>:1: the line starting at byte 0 is longer than" in err
    assert rss < RSS_LIMIT and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_gzip_bomb_and_a_sparse_file_are_refused_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.log.gz"
    with open(bomb, "wb") as f:  # 1 GB of one line, about 1 MB on disk
        z = zlib.compressobj(1, zlib.DEFLATED, 31)
        f.write(z.compress(EVENT.encode() * 3))
        block = b"x" * (1 << 20)
        for _ in range(1024):
            f.write(z.compress(block))
        f.write(z.flush())
    assert bomb.stat().st_size < 8 << 20
    status, err, rss = run_goheap("trace", "import", str(bomb))
    assert status == 2 and f"bomb.log.gz:16: the line starting at byte {len(EVENT) * 3} " in err, err
    assert rss < RSS_LIMIT
    sparse = tmp_path / "sparse.log"
    with open(sparse, "wb") as f:
        f.write(EVENT.encode())
        f.truncate(4 << 30)  # 4 GB of zeros, nothing on disk
    status, err, rss = run_goheap("trace", "import", str(sparse))
    assert status == 2 and "sparse.log:6: the line starting at byte" in err and rss < RSS_LIMIT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.log.gz", "sparse.log"]


def test_a_64_bit_overflow_in_a_log_names_the_line(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text(EVENT + EVENT.replace("0xc000010000", "0x10000000000000000"))
    with pytest.raises(TraceFormatError, match=r"big\.log:6: address 0x10000000000000000 does not fit in 64 bits"):
        import_log(log)
    log.write_text(EVENT.replace("0x10,", "0xffffffffffffffffff,"))
    res = CliRunner().invoke(cli.main, ["trace", "import", str(log)])
    assert res.exit_code == 2 and "big.log:1: size 0xffffffffffffffffff does not fit in 64 bits" in res.stderr


def _trace_file(path: Path, **replace) -> Path:
    Trace.from_columns(
        {"kind": [0, 1], "addr": [16, 16], "size": [8, 8], "type_id": [-1, -1], "func_id": [-1, -1]}
    ).save(path)
    if replace:
        with zipfile.ZipFile(path) as zf:
            members = {name: zf.read(name) for name in zf.namelist()}
        members.update(replace)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    return path


def _npy(header_shape: int, dtype: str, data: bytes) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": (header_shape,)})
    return out.getvalue() + data


def test_a_member_claiming_2_to_the_40_rows_is_refused_before_it_is_read(tmp_path: Path) -> None:
    t = _trace_file(tmp_path / "t.npz", **{"kind.npy": _npy(1 << 40, "|u1", b"\0\1")})
    with pytest.raises(TraceFormatError, match=r"member 'kind\.npy' \(at byte \d+\): holds 1,099,511,627,776 rows but meta"):
        Trace.load(t)
    meta = json.dumps({"format": "goheap-trace", "version": 1, "events": 1 << 40}).encode()
    t = _trace_file(tmp_path / "t.npz", **{"kind.npy": _npy(1 << 40, "|u1", b"\0\1"), "meta.npy": _npy(len(meta), "|u1", meta)})
    with pytest.raises(TraceFormatError, match=r"its header claims 1,099,511,627,776 rows \(1,099,511,627,776 bytes\) but the archive declares 2 bytes"):
        Trace.load(t)


@pytest.mark.slow
def test_a_zip_bomb_member_is_refused_before_it_is_decompressed(tmp_path: Path) -> None:
    n = 1 << 27  # 1 GB of zeros in the addr column, about 1 MB compressed
    t = _trace_file(tmp_path / "t.npz")
    with zipfile.ZipFile(t) as zf:
        members = {name: zf.read(name) for name in zf.namelist() if name != "addr.npy"}
    with zipfile.ZipFile(t, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        with zf.open("addr.npy", "w", force_zip64=True) as m:
            m.write(_npy(n, "<u8", b""))
            block = bytes(1 << 24)
            for _ in range(n * 8 // len(block)):
                m.write(block)
    assert t.stat().st_size < 8 << 20
    status, err, rss = run_goheap("trace", "info", str(t))
    assert status == 2 and "member 'addr.npy'" in err and "holds 134,217,728 rows but meta['events'] is 2" in err, err
    assert rss < RSS_LIMIT


def test_deeply_nested_json_in_meta_is_a_format_error(tmp_path: Path) -> None:
    nested = ("[" * 100_000 + "]" * 100_000).encode()
    t = _trace_file(tmp_path / "t.npz", **{"meta.npy": _npy(len(nested), "|u1", nested)})
    with pytest.raises(TraceFormatError, match="unreadable member .nested too deeply."):
        Trace.load(t)
    res = CliRunner().invoke(cli.main, ["trace", "info", str(t)])
    assert res.exit_code == 2 and "nested too deeply" in res.stderr and "Traceback" not in res.output


def test_compare_refuses_a_reference_that_is_not_text(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    (tmp_path / "ref.stdout").write_bytes(b"stretch tree\n# MemStats\nAlloc=\xff\xfe\n")
    (tmp_path / "ours.stdout").write_text("# MemStats\nAlloc=1\n")
    res = CliRunner().invoke(cli.main, ["compare", str(ref), str(tmp_path / "ours")])
    assert res.exit_code == 2, res.output
    assert res.stderr == f"goheap compare: error: {ref}.stdout:3: byte 30 (0xff) is not UTF-8 text: not a run's output\n"


def test_binarytrees_depth_is_bounded() -> None:
    res = CliRunner().invoke(cli.main, ["run", "binarytrees", "99999"])
    assert res.exit_code == 2 and "binarytrees: N=99999 is too deep" in res.stderr and "at most 31" in res.stderr


# ------------------------------------------------------------------ outputs never clobber inputs


def test_import_refuses_to_overwrite_its_log(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text(EVENT)
    os.link(log, tmp_path / "link.log")
    for out in (log, tmp_path / "." / "x.log", tmp_path / "link.log"):
        res = CliRunner().invoke(cli.main, ["trace", "import", str(log), "-o", str(out)])
        assert res.exit_code == 2 and "is the same file as the log" in res.stderr, res.output
    assert log.read_text() == EVENT and sorted(p.name for p in tmp_path.iterdir()) == ["link.log", "x.log"]


def test_replay_refuses_outputs_that_are_the_trace_or_each_other(tmp_path: Path) -> None:
    t = _trace_file(tmp_path / "t.npz")
    before = t.read_bytes()
    for args, message in [
        (["--report", str(t)], "--report"),
        (["--heap-profile", str(t)], "--heap-profile"),
        (["--report", str(tmp_path / "x"), "--heap-profile", str(tmp_path / "x")], "--heap-profile"),
    ]:
        res = CliRunner().invoke(cli.main, ["replay", str(t), *args])
        assert res.exit_code == 2 and res.stderr.startswith(f"goheap replay: error: {message}"), res.output
        assert "same file" in res.stderr
    assert t.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["t.npz"]
