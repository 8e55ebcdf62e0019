"""HeapState: what the mixins of :class:`goheap.Heap` may use of one another, declared for the type checker.

The mixins (profiling, finalizers, scavenger) work on attributes Heap.__init__ sets and call
the plumbing heap.py defines; this base class names them with their types, so each mixin is
checked on its own and Heap's own definitions are checked against the same declarations. It
adds nothing at run time: the annotations create no attributes and the methods are declared
only for the checker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from .._runtime.layout import RuntimeArrays
from ..policy import Policy
from .config import HeapConfig

if TYPE_CHECKING:
    from ..race import RaceDetector


class HeapState:
    """The attributes and plumbing methods Heap's parts share (see the module docstring)."""

    config: HeapConfig
    policy: Policy  # what the heap runs: HeapConfig.policy resolved (set_memory_limit replaces it)
    trace_stream: TextIO | None
    race: RaceDetector | None
    _closed: bool
    _handle: int  # the runtime's handle, every compiled entry point's first argument
    _arrays: RuntimeArrays  # released by close(): every use follows a check of _closed
    _local: threading.local  # per thread: its MCache row, the profile bucket it charges
    _lock: threading.RLock  # the Python-side tables, and close()
    _finq_lock: threading.Lock  # held by the thread running finalizers
    _finalizers: dict[int, Callable[[int], object]]
    _stacks: dict[tuple[tuple[str, str, int], ...], int]  # interned call stacks -> profile bucket
    _stack_frames: list[tuple[tuple[str, str, int], ...]]  # profile bucket -> its call stack
    _traced: int  # gctrace lines printed so far
    _numgc_seen: int
    _profile_rate: int
    _scvg_k: int
    _scvg_tick_ns: int
    _next_scavenge: int
    _scvg_stop: threading.Event

    if TYPE_CHECKING:  # defined by Heap (heap.py)

        def _check_open(self) -> None: ...

        def _cache(self) -> int: ...

        def _after(self, keep: int = 0) -> None: ...

        def _trace_stream(self) -> TextIO: ...

        def _print_traces(self) -> None: ...
