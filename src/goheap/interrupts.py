"""Ctrl-C and SIGTERM for the command line: stop cleanly, at a point where stopping is safe.

``goheap`` turns SIGINT and SIGTERM into an :class:`Interrupted` exception (a
``KeyboardInterrupt``), which unwinds the command: temporary files are removed (see
:mod:`goheap.atomicfile`), nothing is left under a final name, and the command line prints
one line and exits with 128 + the signal number (130, 143), as a shell expects.

The handlers are installed when the command line starts (``GoheapGroup.main``); a signal
during Python's own start-up, while goheap is being imported, still gets Python's default
behaviour.

When the exception may be raised
--------------------------------
Python runs a signal handler between two bytecodes of whatever Python code runs next,
and some of that code is called by native code that does not expect an exception:

* numba boxes a compiled function's result with the help of a Python function
  (``numba.core.serialize._numba_unpickle``). An exception raised there makes the native
  caller put a NULL into the returned tuple, and the interpreter crashes when the tuple is
  unpacked: SIGINT during ``goheap replay``'s planning pass (one compiled call over the
  whole trace) segfaulted in about half the tries, or was lost when the exception was
  cleared by the native code.
* llvmlite's callbacks from LLVM (its object cache, while numba loads or stores machine
  code) are ctypes callbacks: an exception there is printed as "ignored" and lost.

* Python code run by the garbage collector (a ``__del__``, a weakref callback) reports
  its exceptions as "ignored" and goes on: the interrupt would be lost there too.

So the handler raises only when no frame of llvmlite, and no frame of numba other than
the dispatcher's compile entry (which reports exceptions properly), is on the stack.
Otherwise it notes the signal and re-checks 10 ms later (SIGALRM), so the exception comes
at the first safe bytecode: right after the compiled call returns. An interrupt that is
nevertheless swallowed (``sys.unraisablehook`` sees it) is noted again and re-raised the
same way. One swallowed silently (by native code that clears it, or by code that catches
too much) cannot be seen where it happens, but :class:`Interrupted` always ends the
command: a process still running :data:`RESEND_S` after raising it has lost it, and
exits then as it would have, temporary files removed, its line printed (the
``on_lost`` callback), status 128 + the signal. Code that catches the exception to wind
down on purpose (``goheap sweep`` keeps the runs that finished; the command line prints
its line) says so with :func:`interrupt_caught`. A second signal while one is pending
exits at once (status 128 + signal), removing the temporary files first.

Blocking reads
--------------
Python runs a handler only once the main thread is back in the interpreter: a blocking
``read`` ends early for a signal that arrives while it waits, but not for one that arrived
just before it started (or was taken by another thread), and then waits for data that may
never come (``goheap trace import -`` fed by a writer that waits for goheap's exit). This
is how a Ctrl-C was lost under load: the 10 ms re-check of a signal that came during a
compiled scan fell just before the read of the next block. So a read that may wait
(standard input, a pipe) first waits in :func:`wait_readable`, which ``select``\s on the
input and on a pipe that every signal writes a byte to (``signal.set_wakeup_fd``): a
signal ends the wait wherever it arrived, and its handler runs before the read.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from .atomicfile import remove_all_pending

__all__ = ["Interrupted", "handling_signals", "interrupt_caught", "safe_to_raise", "wait_readable"]

#: Seconds between two checks of a signal that arrived at an unsafe point.
RECHECK_S = 0.01
#: Seconds after which an :class:`Interrupted` that did not end the command was lost.
RESEND_S = 2.0
#: The signals turned into :class:`Interrupted`.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The command was stopped by a signal (``signum``); ``exit_status`` is 128 + signum."""

    __module__ = "goheap"

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_status = 128 + signum


def _package_dir(name: str) -> str | None:
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    return str(Path(path).parent) + os.sep if path else None


def safe_to_raise(frame) -> bool:
    """Whether an exception may be raised in ``frame`` (see the module docstring)."""
    numba_dir = _package_dir("numba")
    llvmlite_dir = _package_dir("llvmlite")
    outermost_numba = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if llvmlite_dir and filename.startswith(llvmlite_dir):
            return False
        if numba_dir and filename.startswith(numba_dir):
            outermost_numba = frame
        frame = frame.f_back
    if outermost_numba is None:
        return True
    code = outermost_numba.f_code
    return code.co_filename.endswith(os.sep + "dispatcher.py") and code.co_name in ("_compile_for_args", "compile")


class _Handler:
    def __init__(self, on_lost: Callable[[Interrupted], None] | None = None) -> None:
        self.pending: int | None = None
        self.raised: int | None = None  # the signal of the Interrupted raised last
        self.on_lost = on_lost

    def on_signal(self, signum, frame) -> None:
        if self.pending is not None:
            # a second signal while the first waits for a safe point: stop now
            remove_all_pending()
            sys.stderr.write(f"goheap: {signal.Signals(signum).name} again: exiting at once\n")
            sys.stderr.flush()
            os._exit(128 + self.pending)
        self.pending = signum
        self.on_alarm(signal.SIGALRM, frame)

    def on_alarm(self, _signum, frame) -> None:
        if self.pending is None:
            if self.raised is not None:  # still running: the Interrupted was lost
                self._exit_now(Interrupted(self.raised))
            return
        if safe_to_raise(frame):
            signum, self.pending = self.pending, None
            self.raised = signum
            signal.setitimer(signal.ITIMER_REAL, RESEND_S)
            raise Interrupted(signum)
        signal.setitimer(signal.ITIMER_REAL, RECHECK_S)

    def _exit_now(self, exc: Interrupted) -> None:
        remove_all_pending()
        if self.on_lost is not None:
            self.on_lost(exc)
        sys.stderr.flush()
        os._exit(exc.exit_status)

    def on_unraisable(self, unraisable, previous) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, Interrupted):  # swallowed where it was raised: raise it again soon
            self.pending = exc.signum
            signal.setitimer(signal.ITIMER_REAL, RECHECK_S)
            return
        previous(unraisable)


_handlers: list[_Handler] = []  # the handlers installed now (by handling_signals)
_wakeups: list[int] = []  # the read ends of their wakeup pipes, innermost last


def wait_readable(fd: int) -> None:
    """Wait until ``fd`` has data (or its end) to read, running the handler of any signal
    that comes meanwhile: a read that follows cannot miss a signal (see the module
    docstring). Returns at once outside :func:`handling_signals` and off the main thread."""
    if not _wakeups or threading.current_thread() is not threading.main_thread():
        return
    wakeup = _wakeups[-1]
    while True:
        ready, _, _ = select.select([fd, wakeup], [], [])
        if wakeup in ready:
            _drain(wakeup)  # entering a Python function runs the pending handlers
        if fd in ready:
            return


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def interrupt_caught() -> None:
    """Say that the :class:`Interrupted` just caught is handled: it is not raised again."""
    for handler in _handlers:
        handler.raised = None


@contextlib.contextmanager
def handling_signals(on_lost: Callable[[Interrupted], None] | None = None) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` while the block runs (main thread only).

    A signal the process inherited as ignored (SIGINT of a background job) stays ignored.
    The previous handlers are restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _Handler(on_lost)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: handler.on_unraisable(unraisable, previous_hook)
    previous = {}
    for signum in (*SIGNALS, signal.SIGALRM):
        old = signal.getsignal(signum)
        if old is signal.SIG_IGN and signum != signal.SIGALRM:
            continue
        previous[signum] = old
        signal.signal(signum, handler.on_alarm if signum == signal.SIGALRM else handler.on_signal)
    _handlers.append(handler)
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_read, False)
    os.set_blocking(wakeup_write, False)
    previous_wakeup = signal.set_wakeup_fd(wakeup_write, warn_on_full_buffer=False)
    _wakeups.append(wakeup_read)
    try:
        yield
    finally:
        _handlers.remove(handler)
        _wakeups.remove(wakeup_read)
        signal.set_wakeup_fd(previous_wakeup)
        os.close(wakeup_read)
        os.close(wakeup_write)
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.unraisablehook = previous_hook
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
