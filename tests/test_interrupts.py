"""Signals: Ctrl-C exits 130 and SIGTERM 143, with one line, no file left behind, never a crash.

Signals are sent to real ``goheap`` subprocesses: deterministically while an import reads
its standard input, and at several moments of a replay (loading the compiled code, the
planning pass, the replay, the report). The planning pass's crash (numba boxing a
compiled function's result through a Python function a signal handler raised in) is
also reproduced directly, in a compiled function that signals its own process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from goheap.interrupts import safe_to_raise
from goheap.trace import Trace

EVENT = "tracealloc(0xc000010000, 0x10, *main.Node)\ngoroutine 1 [running]:\nmain.f()\n\t/tmp/main.go:3\n\n"
FREE = "tracefree(0xc000010000, 0x10)\ngoroutine 1 [running]:\nmain.f()\n\t/tmp/main.go:3\n\n"


def goheap(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "goheap.cli", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs
    )


@pytest.mark.nojit
def test_a_signal_inside_numba_or_llvmlite_waits_for_a_safe_point() -> None:
    import numba

    numba_dir = os.path.dirname(numba.__file__)
    frames = {}
    for name, filename in [
        ("unpickle", os.path.join(numba_dir, "core", "serialize.py")),
        ("compile", os.path.join(numba_dir, "core", "dispatcher.py")),
    ]:
        code = compile(f"def {name}(probe):\n    return probe(sys._getframe())\n", filename, "exec")
        namespace = {"sys": sys}
        exec(code, namespace)
        frames[name] = namespace[name]
    assert safe_to_raise(sys._getframe())
    assert not frames["unpickle"](safe_to_raise)  # numba boxing a result: never raise there
    # numba's compiler, entered from its dispatcher, passes exceptions on properly
    compile_entry = compile("def _compile_for_args(probe):\n    return probe(sys._getframe())\n",
                            os.path.join(numba_dir, "core", "dispatcher.py"), "exec")
    namespace = {"sys": sys}
    exec(compile_entry, namespace)
    assert namespace["_compile_for_args"](safe_to_raise)


@pytest.mark.slow
def test_a_signal_while_numba_boxes_a_result_is_raised_after_it(tmp_path: Path) -> None:
    script = tmp_path / "boxing.py"
    script.write_text(textwrap.dedent("""
        import ctypes, os, signal
        import numba, numpy as np
        from goheap.interrupts import Interrupted, handling_signals

        libc = ctypes.CDLL(None)
        kill, getpid = libc.kill, libc.getpid
        kill.argtypes, kill.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        getpid.argtypes, getpid.restype = [], ctypes.c_int

        @numba.njit
        def plan(n, sig):
            kill(getpid(), sig)  # the signal arrives while compiled code runs
            return np.zeros(n, np.int64), n, np.ones(n, np.int64)

        plan(1, 0)
        caught = 0
        with handling_signals():
            for _ in range(20):
                try:
                    a, n, b = plan(1000, signal.SIGINT)
                    while True:
                        pass  # the handler raises at the first safe bytecode
                except Interrupted as exc:
                    caught += exc.signum == signal.SIGINT
        print(caught)
    """))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "20"


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_import_exits_with_its_status_and_leaves_nothing(tmp_path: Path, signum, status) -> None:
    out = tmp_path / "out" / "prog.trace.npz"
    out.parent.mkdir()
    p = goheap("trace", "import", "-", "-o", str(out), stdin=subprocess.PIPE)
    # more than the pipe and the reader's buffers hold: once written, the import is running
    p.stdin.write(((EVENT + FREE) * 4096).encode() * 8)
    p.stdin.flush()
    p.send_signal(signum)
    err = p.stderr.read().decode()
    p.stdin.close()
    assert p.wait() == status, err
    name = signal.Signals(signum).name
    assert err == f"goheap trace import: interrupted ({name}): the import of <stdin> did not finish; {out} was not written\n"
    assert list(out.parent.iterdir()) == []


def test_a_signal_the_main_thread_did_not_take_still_stops_a_read_of_stdin(tmp_path: Path) -> None:
    # The signal is taken by another thread, as one that arrives just before a blocking read
    # starts: the read would not end for it, and the writer below never closes the pipe.
    script = tmp_path / "reader.py"
    script.write_text(textwrap.dedent("""
        import signal, threading, time
        from goheap.interrupts import Interrupted, handling_signals
        from goheap.trace.byteinput import ByteInput

        def poke():
            time.sleep(0.5)
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)

        with handling_signals():
            try:
                with ByteInput("-") as log:
                    threading.Thread(target=poke).start()
                    while log.more(0):
                        pass
                print("end of input")
            except Interrupted as exc:
                print("interrupted", exc.signal_name)
    """))
    p = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"some bytes, then nothing")
    p.stdin.flush()  # and the pipe stays open
    try:
        status = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail("the read of stdin did not stop for the signal")
    finally:
        p.stdin.close()
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    assert status == 0, err[-2000:]
    assert out == "interrupted SIGINT\n"


@pytest.mark.nojit
def test_waiting_for_input_outside_a_command_returns_at_once() -> None:
    from goheap.interrupts import wait_readable

    r, w = os.pipe()
    try:
        wait_readable(r)  # no handlers installed: nothing to wait for, the read itself waits
    finally:
        os.close(r)
        os.close(w)


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory) -> Path:
    """A million events: a planning pass and a replay long enough to be interrupted."""
    n = 1 << 19
    k = np.arange(n)
    kind = np.zeros(2 * n, np.uint8)
    kind[1::2] = 1
    addr = np.empty(2 * n, np.uint64)
    addr[0::2] = 0xC000000000 + 64 * k
    addr[1::2] = 0xC000000000 + 64 * k
    path = tmp_path_factory.mktemp("big") / "big.trace.npz"
    Trace.from_columns(
        {"kind": kind, "addr": addr, "size": np.full(2 * n, 48, np.uint64),
         "type_id": np.full(2 * n, -1, np.int32), "func_id": np.full(2 * n, -1, np.int32)}
    ).save(path)
    return path


@pytest.mark.slow
def test_a_replay_interrupted_at_any_moment_exits_cleanly(tmp_path: Path, big_trace: Path) -> None:
    outputs = tmp_path / "out"
    outputs.mkdir()
    # a rate of its own: the replay says nothing about the rate it would pick
    args = ["replay", str(big_trace), "--report", str(outputs / "r.html"), "--heap-profile", str(outputs / "p.pb.gz"),
            "--memprofilerate", "2048"]
    t0 = time.perf_counter()
    p = goheap("--version")  # start-up: Python and goheap imported, before the handlers exist
    p.stderr.read()
    assert p.wait() == 0
    startup = time.perf_counter() - t0
    for _ in range(2):  # the first may still compile or load code; time the second
        t0 = time.perf_counter()
        p = goheap(*args)
        p.stderr.read()
        whole = time.perf_counter() - t0
        assert p.wait() == 0 and sorted(x.name for x in outputs.iterdir()) == ["p.pb.gz", "r.html"]
    for x in outputs.iterdir():
        x.unlink()
    interrupted = 0
    # the planning pass, the replay, the report
    for signum, fraction in ((signal.SIGINT, 0.2), (signal.SIGTERM, 0.5), (signal.SIGINT, 0.85)):
        p = goheap(*args)
        time.sleep(startup * 1.2 + (whole - startup * 1.2) * fraction)
        p.send_signal(signum)
        err = p.stderr.read().decode()
        code = p.wait()
        # finished before the signal (or it came during the interpreter's own shutdown,
        # after goheap's handlers are gone): everything written
        if code in (0, -signum):
            assert sorted(x.name for x in outputs.iterdir()) == ["p.pb.gz", "r.html"]
            for x in outputs.iterdir():
                x.unlink()
            continue
        interrupted += 1
        assert code == 128 + signum, err
        assert err == (
            f"goheap replay: interrupted ({signal.Signals(signum).name}): the replay of {big_trace} did not "
            f"finish; nothing was written ({outputs / 'r.html'}, {outputs / 'p.pb.gz'})\n"
        )
        assert list(outputs.iterdir()) == []
    assert interrupted >= 2


_SWALLOWING = """
import os, signal, sys, time
from goheap import interrupts
interrupts.RESEND_S = 0.2
with interrupts.handling_signals(on_lost=lambda exc: print("lost", exc.signal_name, file=sys.stderr)):
    try:
        os.kill(os.getpid(), signal.{signal})
        time.sleep(1)
    except interrupts.Interrupted:
        {then}
    time.sleep(2)
print("went on", file=sys.stderr)
"""


@pytest.mark.nojit
def test_an_interrupt_swallowed_silently_ends_the_command_anyway() -> None:
    script = _SWALLOWING.format(signal="SIGTERM", then="pass  # swallowed, as code that catches too much would")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stderr) == (143, "lost SIGTERM\n")


@pytest.mark.nojit
def test_an_interrupt_caught_on_purpose_lets_the_command_wind_down() -> None:
    script = _SWALLOWING.format(signal="SIGINT", then="interrupts.interrupt_caught()")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stderr) == (0, "went on\n")
