"""A Go process of February 2013 around a goheap heap: the runtime's and libraries' own blocks.

A real Go program never has the heap to itself. Before ``main.main`` runs, the runtime and
the packages it links (runtime, os, syscall, fmt, ...) allocate their own blocks; the
collector allocates a stack segment for every collection and two ParFor descriptors at
the first one; the program's last ``runtime.ReadMemStats`` needs a MemStats on the heap.
These blocks are a few dozen, but they are most of a small heap: the first collection
of every seed run fires on a heap of about 200 KB holding only 11 of them, and that heap
sets the pace (next_gc) of the second collection and so of all the later ones. A port
that left them out would collect several times as often as the real program early on.

goheap cannot run the runtime's C code, so this module replays those blocks as a fixed
list, :data:`RUNTIME_BLOCKS`: their sizes, kinds (scanned, stack segment, temporary),
lifetimes, and when they are allocated (phase). The list is *measured*, not derived: the
classes and counts are those of ``BySize`` in the seed runs (../data/go-seed-runs) that no
program allocation explains (80 blocks; 3 of them freed; a few depend on whether GOGC was
in the environment), and the split into phases follows the first two gctrace lines of
those runs (11 blocks live at gc1, the pace of gc2). Where the 2013 source names a block
(the symbol table that ``mcommoninit``'s call to ``runtime·callers`` builds, signal and g0
stack segments from ``malg``, G and M records, the three ``os.File`` objects with
finalizers) the entry says so; the rest are marked unidentified. The runtime allocates
its own blocks itself: the finalizer table's arrays (when the os.File finalizers are set),
and, with ``HeapConfig(go_process=True)``, the collector's stack segment per collection
and its two ParFor descriptors.

This is listed among the Departures in the overview essay (``goheap._runtime.malloc``).
"""

from __future__ import annotations

import enum
import os
import sys
from dataclasses import dataclass
from typing import TextIO

from ..heap import Heap, HeapConfig

__all__ = ["BlockKind", "GoProcess", "Phase", "RUNTIME_BLOCKS", "RuntimeBlock"]


class Phase(enum.Enum):
    """When a runtime block is allocated."""

    BOOT = "boot"  # schedinit: before mstats.enablegc is set, so nothing collects
    INIT = "init"  # package initialization; its first allocation triggers gc1
    EXIT = "exit"  # dumpMemStats, after the program's own work


class BlockKind(enum.Enum):
    """How a runtime block is allocated and kept."""

    OBJECT = "object"  # mal/new: scanned conservatively, kept alive by a global
    STACK = "stack"  # a stack segment: FlagNoGC|FlagNoProfiling, unzeroed, never collected
    FREED = "freed"  # a temporary the runtime frees explicitly right away
    GARBAGE = "garbage"  # dropped at once: the next collection frees it
    FINALIZED = "finalized"  # an os.File with a finalizer (SetFinalizer), kept alive by a global


@dataclass(frozen=True)
class RuntimeBlock:
    size: int
    kind: BlockKind
    phase: Phase
    what: str


def _blocks(phase: Phase, kind: BlockKind, size: int, count: int, what: str) -> list[RuntimeBlock]:
    return [RuntimeBlock(size, kind, phase, what)] * count


_B, _I, _E = Phase.BOOT, Phase.INIT, Phase.EXIT

# Sizes that depend on the process's environment, resolved by GoProcess: the seed runs had
# three variables (GOGCTRACE, GOMAXPROCS and one more), four when GOGC was set too, and
# then one more 240-byte block.
ENVIRON = -1
GOGC_SET = -2
ENVIRON_VARS = 3
_OBJ, _STACK = BlockKind.OBJECT, BlockKind.STACK

#: The runtime's and libraries' own blocks, in allocation order (see the module docstring).
RUNTIME_BLOCKS: tuple[RuntimeBlock, ...] = tuple(
    [
        RuntimeBlock(155648, _OBJ, _B, "symbol table: buildfuncs' func array, for mcommoninit's runtime·callers"),
        RuntimeBlock(2048, _OBJ, _B, "symbol table: source file names (fname)"),
        RuntimeBlock(32768, _STACK, _B, "m0's signal stack (malg(32 KB))"),
        RuntimeBlock(8192, _STACK, _B, "a g0 stack (malg(8192))"),
        *_blocks(_B, _OBJ, 256, 2, "G records: m0.gsignal, the main goroutine"),
        RuntimeBlock(32, _OBJ, _B, "os.Args string headers (goargs)"),
        RuntimeBlock(ENVIRON, _OBJ, _B, "environment string headers (goenvs): 16 bytes a variable"),
        RuntimeBlock(576, _OBJ, _B, "runtime-internal, unidentified"),
        # package initialization: the first of these is the first allocation that may
        # collect, and so triggers gc1 on a heap of about 200 KB
        RuntimeBlock(32, _OBJ, _I, "os.Args slice (os.init)"),
        RuntimeBlock(32768, _STACK, _I, "a second M's signal stack"),
        RuntimeBlock(10240, _OBJ, _I, "an M record"),
        RuntimeBlock(6656, _OBJ, _I, "runtime-internal, unidentified"),
        *_blocks(_I, _OBJ, 256, 3, "G records: the scavenger and a second M's g0 and gsignal"),
        RuntimeBlock(512, _OBJ, _I, "runtime-internal, unidentified"),
        RuntimeBlock(144, _OBJ, _I, "runtime-internal, unidentified"),
        RuntimeBlock(96, _OBJ, _I, "runtime-internal, unidentified"),
        *_blocks(_I, _OBJ, 8, 3, "package variables, unidentified"),
        *_blocks(_I, _OBJ, 16, 20, "package variables, unidentified"),
        *_blocks(_I, _OBJ, 32, 3, "package variables, unidentified"),
        RuntimeBlock(32, BlockKind.FREED, _I, "a temporary, freed explicitly"),
        *_blocks(_I, BlockKind.FINALIZED, 48, 3, "os.Stdin, os.Stdout, os.Stderr (os.NewFile sets a finalizer)"),
        *_blocks(_I, _OBJ, 48, 7, "package variables, unidentified"),
        RuntimeBlock(GOGC_SET, _OBJ, _I, "only when GOGC is in the environment: unidentified"),
        *_blocks(_I, _OBJ, 80, 4, "fmt padding tables and package variables"),
        RuntimeBlock(112, _OBJ, _I, "package variables, unidentified"),
        RuntimeBlock(112, BlockKind.FREED, _I, "a temporary, freed explicitly"),
        RuntimeBlock(160, _OBJ, _I, "package variables, unidentified"),
        RuntimeBlock(192, _OBJ, _I, "package variables, unidentified"),
        RuntimeBlock(208, _OBJ, _I, "package variables, unidentified"),
        RuntimeBlock(240, BlockKind.GARBAGE, _I, "a temporary the next collection frees"),
        RuntimeBlock(288, _OBJ, _I, "package variables, unidentified"),
        # dumpMemStats
        RuntimeBlock(4096, _OBJ, _E, "the runtime.MemStats the program reads"),
        *_blocks(_E, _OBJ, 1664, 2, "fmt buffers, unidentified"),
        RuntimeBlock(2048, _OBJ, _E, "fmt buffers, unidentified"),
    ]
)


#: The call stack the memory profile charges each phase's blocks to (the runtime's
#: own frames are not modelled one by one: each phase is charged to the function it runs in).
PROFILE_STACKS: dict[Phase, tuple[str, ...]] = {
    Phase.BOOT: ("runtime.schedinit",),
    Phase.INIT: ("main.init", "runtime.main"),
    Phase.EXIT: ("main.dumpMemStats", "main.main", "runtime.main"),
}


class GoProcess:
    """A goheap heap inside a model of a 2013 Go process: build it, :meth:`start`, run, :meth:`exit`.

    ``start`` replays the blocks of phases BOOT and INIT (the first collection happens
    there), ``exit`` those of phase EXIT; in between the workload allocates on
    :attr:`heap` (usually from compiled code on :attr:`runtime` and :attr:`cache`).
    """

    def __init__(
        self,
        *,
        gcpercent: int | None = None,
        gctrace: int | None = None,
        trace_stream: TextIO | None = None,
        virtual_clock: bool = False,
        blocks: tuple[RuntimeBlock, ...] = RUNTIME_BLOCKS,
        gogc_in_environ: bool | None = None,
        **config,
    ):
        """gogc_in_environ: whether the modelled process has GOGC among its environment
        variables (default: when ``gcpercent`` is given, or GOGC is set in ours)."""
        self.heap = Heap(
            HeapConfig(
                gcpercent=gcpercent,
                gctrace=gctrace,
                trace_stream=trace_stream if trace_stream is not None else sys.stderr,
                virtual_clock=virtual_clock,
                go_process=True,
                enable_gc=False,
                **config,
            )
        )
        if gogc_in_environ is None:
            gogc_in_environ = gcpercent is not None or "GOGC" in os.environ
        nvars = ENVIRON_VARS + (1 if gogc_in_environ else 0)
        self.blocks = tuple(_resolve(b, nvars, gogc_in_environ) for b in blocks)
        self.blocks = tuple(b for b in self.blocks if b.size > 0)

    @property
    def runtime(self):
        return self.heap.runtime

    @property
    def cache(self) -> int:
        return self.heap.cache()

    def start(self) -> None:
        """schedinit, then package initialization: the runtime's blocks up to main.main."""
        self._allocate(Phase.BOOT)
        self.heap.enable_gc()  # the end of schedinit
        self._allocate(Phase.INIT)

    def exit(self) -> None:
        """The blocks the program's last act allocates (dumpMemStats)."""
        self._allocate(Phase.EXIT)

    def _allocate(self, phase: Phase) -> None:
        h = self.heap
        with h.attributing_allocations(h.profile_bucket(PROFILE_STACKS[phase])):
            self._allocate_blocks(phase)

    def _allocate_blocks(self, phase: Phase) -> None:
        h = self.heap
        for block in self.blocks:
            if block.phase is not phase:
                continue
            kind = block.kind
            if kind is BlockKind.STACK:
                h.alloc(block.size, nogc=True, noprofile=True, zeroed=False)
                continue
            p = h.alloc(block.size)
            if kind is BlockKind.FREED:
                h.free(p)
            elif kind is not BlockKind.GARBAGE:
                h.roots.add(p)  # a package variable: alive for the whole process
                if kind is BlockKind.FINALIZED:
                    h.set_finalizer(p, _close_file)

    def close(self) -> None:
        self.heap.close()

    def __enter__(self) -> GoProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _resolve(block: RuntimeBlock, nvars: int, gogc_in_environ: bool) -> RuntimeBlock:
    if block.size == ENVIRON:
        return RuntimeBlock(16 * nvars, block.kind, block.phase, block.what)
    if block.size == GOGC_SET:
        return RuntimeBlock(240 if gogc_in_environ else 0, block.kind, block.phase, block.what)
    return block


def _close_file(p: int) -> None:
    """(*os.file).close: never runs, the files stay reachable from os.Stdin/Stdout/Stderr."""
