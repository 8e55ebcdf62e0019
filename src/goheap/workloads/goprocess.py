"""A Go process of February 2013 around a goheap heap: the runtime's and libraries' own blocks.

A real Go program never has the heap to itself. Before ``main.main`` runs, the runtime and
the packages the program links allocate their own blocks; fmt allocates a printer and
grows its buffer the first times the program prints; the program's last
``runtime.ReadMemStats`` needs a MemStats on the heap. These blocks are a few dozen, but
they are most of a small heap: the first collection of every seed run fires on about
200 KB holding only 11 of them, and that heap sets the pace of the collections after it.

goheap cannot run that C and Go code, so this module replays its allocations. They are
*traced*, not fitted: ``tools/oracle_alloctrace.py`` runs each program on the real 2013
toolchain under a debugger and logs every allocation the runtime and the libraries make
(size, flags, dogc, the Go type given to settype, the call stack), every explicit free,
and which blocks the collector later sweeps. What it showed:

* *start-up* (schedinit, runtime.main): mallocinit's smoke test, the symbol table
  runtime·callers builds (three blocks whose sizes depend on the binary, its GOROOT and
  its source paths: :data:`SYMBOL_TABLES`), the argument and environment string headers
  (16 bytes per string), G records and m0's signal stack. All with dogc = 0.
* *package initialization*: each package's ``init`` allocates the same blocks in every
  program (:data:`PACKAGE_INITS`: errors.New's error values, the maps of syscall and
  time, the 2048-byte defer chunk, fmt's caches, the three os.File objects with their
  finalizers...), in the order the program's imports put them (:data:`PROGRAMS`). Two
  blocks are per process, not per package: the itab (error, \\*errors.errorString), made
  by the first errors.New, and the 240-byte subtable syscall's environment map grows to
  when GOGC is set (the map's hash seed is random: with three variables it grows only
  sometimes, with four in every oracle run).
* *the scavenger's M*: at the end of initialization runtime.main yields, the scavenger
  goroutine runs and enters a system call, and the runtime starts a second M (an M
  record, the M's MCache, a g0 and its stack, a gsignal G and its signal stack) that
  goes on running the main goroutine: the program allocates from that M's MCache, while
  m0's keeps the objects it had cached and its pending settype calls until a collection
  takes them back (MemStats.MCacheInuse counts two caches in every run). In a few runs
  in ten the new M starts later: the model takes the usual order.
* *fmt*: the first Printf or Println makes the itab (io.Writer, \\*os.File) and a pp
  printer; every print appends to the printer's buffer, which grows as ``append`` grows
  a slice (the old buffer is garbage); the first write makes another itab.
  :meth:`GoProcess.printf` and :meth:`GoProcess.println` replay that for each line.
* *exit*: ``dumpMemStats``'s ``var m runtime.MemStats`` escapes to the heap.

Blocks the traced program kept are roots here (package variables); blocks it freed
(the maps' old subtables) are freed at the same point; blocks its collector swept (a
temporary of fmt's init, fmt's outgrown buffers) are dropped. goheap's runtime allocates
its own blocks itself (the finalizer table's arrays, and with ``HeapConfig(go_process=True)``
each collection's stack segment and the first one's ParFor descriptors). The blocks'
contents are not modelled: they stay zero, so which runtime block points to which does
not matter; each is kept alive as the trace showed.

This is Departure 13 in the overview essay (``goheap._runtime.malloc``).
"""

from __future__ import annotations

import enum
import os
import re
import sys
from dataclasses import dataclass, replace
from typing import TextIO, TypedDict

from .. import nb
from ..heap import Heap, HeapConfig

__all__ = ["Block", "Fate", "GoProcess", "NEW_M", "PACKAGE_INITS", "PROGRAMS", "SYMBOL_TABLES"]


class Fate(enum.Enum):
    """What became of a traced block."""

    LIVE = "live"  # kept by a package variable or a runtime structure until the end
    FREED_AFTER_NEXT = "freed after the next block"  # runtime·free, right after the block allocated next
    GARBAGE = "garbage"  # dropped: the next collection frees it


@dataclass(frozen=True)
class Block:
    """One traced allocation."""

    size: int  # the size asked for (mallocgc rounds it up to the class)
    what: str  # the allocating calls, innermost first
    noscan: bool = False  # FlagNoPointers
    dogc: bool = True  # runtime·malloc passes dogc = 0: such a block never starts a collection
    zeroed: bool = True
    stack: bool = False  # a stack segment: FlagNoGC|FlagNoProfiling, never collected
    type: str | None = None  # the Go type settype records (runtime.new / makeslice of a pointerful type)
    array: bool = False  # makeslice: an array of ``type``
    fate: Fate = Fate.LIVE
    finalizer: bool = False  # SetFinalizer was called on it


# The Go types the runtime blocks are settype'd with: size and pointer words, from the
# declarations in the 2013 sources (the blocks stay zero in goheap, so the pointer words
# only matter as the type's identity in the span type arrays).
GO_TYPES: dict[str, tuple[int, tuple[int, ...]]] = {
    "errors.errorString": (16, (0,)),  # {s string}
    "os.File": (8, (0,)),  # {*file}
    "os.file": (40, (8, 24)),  # {fd int; name string; dirinfo *dirInfo; nepipe int32}
    "fmt.cache": (40, (8, 32)),  # {mu sync.Mutex; saved []interface{}; new func() interface{}}
    "interface {}": (16, (8,)),
    "fmt.pp": (200, (16, 40, 48, 56, 64, 160)),  # buf, field, value and fmt.buf hold pointers
    "runtime.M": (9216, (0, 8)),
    "runtime.hmap": (32, (24,)),  # {count, datasize, flag, valoff, hash0, *st}: the subtable  # g0, morebuf...: a Go view of the C struct (runtime.cnew(mtype))
}

class _MallocFlags(TypedDict):
    dogc: bool


_MALLOC: _MallocFlags = {"dogc": False}  # runtime·malloc(size): mallocgc(size, 0, dogc=0, zeroed=1)
_ERRORS_NEW = Block(16, "runtime.new < errors.New", type="errors.errorString")
_ERROR_ITAB = Block(40, "runtime.malloc < itab < runtime.typ2Itab < errors.New", **_MALLOC)


def _makemap(subtable: int, init: str, fate: Fate = Fate.LIVE) -> list[Block]:
    """make(map...): the Hmap (settype'd as a map) and its first subtable."""
    return [
        Block(32, f"runtime.mal < runtime.makemap_c < {init}", type="runtime.hmap"),
        Block(subtable, f"hash_subtable_new < hash_init < runtime.makemap_c < {init}", noscan=True, fate=fate),
    ]


def _hash_grow(size: int, init: str, fate: Fate = Fate.LIVE) -> Block:
    """A map outgrows its subtable: the new one is allocated, then the old one freed."""
    return Block(size, f"hash_subtable_new < hash_grow < runtime.mapassign1 < {init}", noscan=True, fate=fate)


def _new_file() -> list[Block]:
    return [
        Block(8, "runtime.new < os.NewFile < os.init", type="os.File"),
        Block(40, "runtime.new < os.NewFile < os.init", type="os.file", finalizer=True),
    ]


_COPYENV = "syscall.copyenv < syscall.Getenv < time.init"

#: What each package's init allocates, in order. An errors.New stands for the error value;
#: the first one in a process also makes the (error, *errorString) itab.
PACKAGE_INITS: dict[str, tuple[Block, ...]] = {
    "strconv": (_ERRORS_NEW,) * 2,
    "syscall": tuple(_makemap(136, "syscall.init")),
    "time": (
        *(_ERRORS_NEW,) * 3,
        *_makemap(112, "time.init", fate=Fate.FREED_AFTER_NEXT),
        _hash_grow(240, "time.init", fate=Fate.FREED_AFTER_NEXT),
        _hash_grow(496, "time.init"),
        Block(2048, "runtime.malloc < newdefer < runtime.deferproc < sync.(*Once).Do < syscall.Getenv < time.init", **_MALLOC),
        *_makemap(112, _COPYENV),
        _ERRORS_NEW,
        # runtime.GOROOT() + "/lib/time/zoneinfo/" with its NUL: 32 bytes for a 12-character GOROOT
        Block(32, "gostringsize < concatstring < time.init", noscan=True, zeroed=False),
    ),
    "io": (_ERRORS_NEW,) * 7,
    "os": (
        *(_ERRORS_NEW,) * 4,
        Block(48, "runtime.malloc < itab < runtime.typ2Itab < os.init", **_MALLOC),
        *_new_file() * 3,  # os.Stdin, os.Stdout, os.Stderr (the finalizer table grows at each)
    ),
    "reflect": (Block(272, "runtime.malloc < itab < runtime.typ2Itab < reflect.TypeOf < reflect.init", **_MALLOC),),
    "fmt": (
        *(Block(65, "makeslice1 < runtime.makeslice < fmt.init", noscan=True),) * 2,  # padZeroBytes, padSpaceBytes
        Block(40, "runtime.new < fmt.newCache < fmt.init", type="fmt.cache"),
        Block(1600, "makeslice1 < runtime.makeslice < fmt.newCache < fmt.init", type="interface {}", array=True),
        Block(16, "runtime.mal < copyin < runtime.convT2E < fmt.init", fate=Fate.GARBAGE),
        Block(40, "runtime.new < fmt.newCache < fmt.init", type="fmt.cache"),
        Block(1600, "makeslice1 < runtime.makeslice < fmt.newCache < fmt.init", type="interface {}", array=True),
        *(_ERRORS_NEW,) * 2,
    ),
}
# with GOGC set, syscall's environment map (four variables) outgrows its first subtable
_COPYENV_SUBTABLE = PACKAGE_INITS["time"][9]
_COPYENV_GROWTH = _hash_grow(240, _COPYENV)


@dataclass(frozen=True)
class Program:
    """What a traced Go program's start-up depends on."""

    init_order: tuple[str, ...]  # the packages whose init allocates, in the order they run
    symbol_table: tuple[int, int, int]  # buildfuncs' func array, file-name table, hugestring (bytes)


#: The seed runs' programs, as built for the oracle (GOROOT of 12 characters, sources under
#: a 90-character directory: see tests/data/oracle-runs/README.md).
PROGRAMS: dict[str, Program] = {
    "binarytrees": Program(("strconv", "syscall", "time", "io", "os", "reflect", "fmt"), (155376, 2040, 6402)),
    "gcbench": Program(("syscall", "time", "strconv", "reflect", "io", "os", "fmt"), (155792, 2040, 6398)),
    "churn": Program(("strconv", "reflect", "syscall", "time", "io", "os", "fmt"), (155272, 2040, 6396)),
}
SYMBOL_TABLES = {name: p.symbol_table for name, p in PROGRAMS.items()}


def _start_up(program: Program, argc: int, nenv: int) -> list[Block]:
    """schedinit and runtime.main up to main.init (all dogc = 0: nothing collects yet)."""
    func, fname, hugestring = program.symbol_table
    symtab = "buildfuncs < runtime.findfunc < runtime.callers < mcommoninit < runtime.schedinit"
    return [
        Block(func, symtab, noscan=True, **_MALLOC),
        Block(fname, symtab, noscan=True, **_MALLOC),
        Block(hugestring, symtab, noscan=True, zeroed=False, **_MALLOC),
        Block(16 * argc, "runtime.malloc < runtime.goargs < runtime.schedinit", **_MALLOC),
        Block(16 * nenv, "runtime.malloc < runtime.goenvs < runtime.schedinit", **_MALLOC),
        Block(256, "runtime.malloc < runtime.malg < runtime.newproc1 < runtime.newproc: the main goroutine", **_MALLOC),
        Block(256, "runtime.malloc < runtime.malg < runtime.minit < runtime.mstart: m0's gsignal", **_MALLOC),
        Block(32768, "runtime.stackalloc < runtime.malg < runtime.minit: m0's signal stack", stack=True, zeroed=False, **_MALLOC),
        Block(256, "runtime.malloc < runtime.malg < runtime.newproc1 < runtime.main: the scavenger goroutine", **_MALLOC),
    ]


def _package_inits(program: Program, gogc_in_environ: bool) -> list[Block]:
    blocks: list[Block] = []
    itab_made = False
    for pkg in program.init_order:
        for block in PACKAGE_INITS[pkg]:
            if block is _COPYENV_SUBTABLE and gogc_in_environ:
                blocks.append(replace(block, fate=Fate.FREED_AFTER_NEXT))
                blocks.append(_COPYENV_GROWTH)
                continue
            blocks.append(block)
            if block is _ERRORS_NEW and not itab_made:
                blocks.append(_ERROR_ITAB)
                itab_made = True
    return blocks


#: The scavenger's first system call starts a second M (runtime.newm on m0: the M record,
#: its MCache, its g0), which then runs the main goroutine (minit on the new M: its gsignal).
NEW_M: tuple[Block, ...] = (
    Block(9216, "runtime.cnew < runtime.newm < matchmg < runtime.entersyscall < runtime.MHeap_Scavenger: the M record", type="runtime.M"),
)
NEW_M_G0: tuple[Block, ...] = (
    Block(256, "runtime.malloc < runtime.malg < runtime.newm: its g0", **_MALLOC),
    Block(8192, "runtime.stackalloc < mstackalloc: its g0 stack", stack=True, zeroed=False, **_MALLOC),
)
NEW_M_MINIT: tuple[Block, ...] = (
    Block(256, "runtime.malloc < runtime.malg < runtime.minit: its gsignal", **_MALLOC),
    Block(32768, "runtime.stackalloc < runtime.malg < runtime.minit: its signal stack", stack=True, zeroed=False, **_MALLOC),
)

_FMT_ITAB = Block(40, "runtime.malloc < itab < runtime.typ2Itab < fmt.Printf: (io.Writer, *os.File)", **_MALLOC)
_WRITE_ITAB = Block(40, "runtime.malloc < itab < runtime.typ2Itab < os.(*File).write", **_MALLOC)
_PP = Block(200, "runtime.new < fmt.newPrinter: the printer", type="fmt.pp")
_STRING_COPY = Block(16, "runtime.mal < copyin < runtime.convT2E: a string in an interface", fate=Fate.GARBAGE)
_MEMSTATS = Block(3696, "runtime.new < main.dumpMemStats: var m runtime.MemStats", noscan=True)
_VERB = re.compile(r"%[dvs]")


def printf_pieces(format: str, args: tuple) -> list[str]:
    """What fmt's doPrintf appends to its buffer, in order: the literal runs and the formatted arguments."""
    pieces: list[str] = []
    last = 0
    for i, m in enumerate(_VERB.finditer(format)):
        if m.start() > last:
            pieces.append(format[last : m.start()])
        pieces.append(str(args[i]))
        last = m.end()
    if last < len(format):
        pieces.append(format[last:])
    return pieces


def println_pieces(args: tuple) -> list[str]:
    """doPrint with a newline: the operands, a space between two, then the newline."""
    pieces: list[str] = []
    for i, a in enumerate(args):
        if i > 0:
            pieces.append(" ")
        pieces.append(str(a))
    pieces.append("\n")
    return pieces


def grown_cap(old_len: int, old_cap: int, need: int) -> int:
    """growslice's new capacity for ``need`` elements: doubled (by a quarter from 1024) until they fit."""
    if old_cap == 0:
        return need
    m = old_cap
    while m < need:
        m += m if old_len < 1024 else m // 4
    return m


class GoProcess:
    """A goheap heap inside a model of a 2013 Go process: build it, :meth:`start`, run, :meth:`exit`.

    ``start`` replays start-up and package initialization (the first collection happens
    there); the workload then allocates on :attr:`heap` (usually from compiled code on
    :attr:`runtime` and :attr:`cache`) and prints through :meth:`printf` / :meth:`println`;
    ``exit`` replays dumpMemStats' allocation.
    """

    def __init__(
        self,
        program: str = "binarytrees",
        argc: int = 2,
        *,
        gcpercent: int | None = None,
        gctrace: int | None = None,
        trace_stream: TextIO | None = None,
        virtual_clock: bool = False,
        gogc_in_environ: bool | None = None,
        **config,
    ):
        """program: one of :data:`PROGRAMS` (its imports and symbol table). argc: os.Args' length.
        gogc_in_environ: whether the modelled process has GOGC among its environment
        variables (default: when ``gcpercent`` is given, or GOGC is set in ours)."""
        if program not in PROGRAMS:
            raise ValueError(f"no traced Go program {program!r} (known: {', '.join(sorted(PROGRAMS))})")
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
        # the seed runs' environment: PATH, GOGCTRACE, GOMAXPROCS [, GOGC]
        nenv = 3 + (1 if gogc_in_environ else 0)
        spec = PROGRAMS[program]
        self.start_up = tuple(_start_up(spec, argc, nenv))
        self.package_inits = tuple(_package_inits(spec, gogc_in_environ))
        self.lines: list[str] = []
        self._types: dict[str, object] = {}
        self._pp = 0  # fmt's printer, once the first print made it
        self._buf = 0  # its buffer, and the buffer's capacity
        self._buf_cap = 0
        self._wrote = False

    @property
    def runtime(self):
        return self.heap.runtime

    @property
    def cache(self) -> int:
        return self.heap.cache()

    # ------------------------------------------------------------ the process's life

    def start(self) -> None:
        """schedinit and runtime.main: start-up, package initialization; then runtime.main's
        gosched lets the scavenger run, whose system call starts a second M, and the main
        goroutine goes on on that M, with its own MCache (m0's keeps what it cached)."""
        h = self.heap
        with h.attributing_allocations(h.profile_bucket(("runtime.schedinit",))):
            self._allocate(self.start_up)
        h.enable_gc()  # the end of schedinit
        with h.attributing_allocations(h.profile_bucket(("main.init", "runtime.main"))):
            self._allocate(self.package_inits)
        with h.attributing_allocations(h.profile_bucket(("runtime.newm", "runtime.MHeap_Scavenger"))):
            self._allocate(NEW_M)
            m2 = h.new_m()
            self._allocate(NEW_M_G0)
            h.run_on_m(m2)
            self._allocate(NEW_M_MINIT)

    def exit(self) -> None:
        """dumpMemStats: its MemStats escapes to the heap, then ReadMemStats."""
        h = self.heap
        with h.attributing_allocations(h.profile_bucket(("main.dumpMemStats", "main.main", "runtime.main"))):
            self._allocate((_MEMSTATS,))

    # ------------------------------------------------------------ fmt

    def printf(self, format: str, *args) -> str:
        """fmt.Printf(format, args...) for %d/%v/%s verbs: the line (without its newline), also kept in :attr:`lines`."""
        pieces = printf_pieces(format, args)
        self._print(pieces)
        return self._emit("".join(pieces))

    def println(self, *args) -> str:
        """fmt.Println(args...)."""
        pieces = println_pieces(args)
        self._print(pieces)
        return self._emit("".join(pieces))

    def convT2E_string(self) -> int:
        """runtime.convT2E of a string, before a print: the header is copied into a 16-byte heap
        block (copyin's runtime·mal), which the interface's data word then points to. The
        caller keeps it (in the stack slot of that interface)."""
        return self._allocate((_STRING_COPY,))[0]

    def _emit(self, text: str) -> str:
        line = text[:-1] if text.endswith("\n") else text
        self.lines.append(line)
        return line

    def _print(self, pieces: list[str]) -> None:
        """newPrinter, the appends to p.buf, the write, p.free (the printer goes back to fmt's cache)."""
        h = self.heap
        if self._pp == 0:
            self._allocate((_FMT_ITAB,))
            self._pp = self._allocate((_PP,))[0]
        length = 0
        for piece in pieces:
            need = length + len(piece.encode())
            if need > self._buf_cap:
                cap = grown_cap(length, self._buf_cap, need)
                buf = h.alloc(cap, noscan=True)  # growslice: makeslice of []byte
                nb.store(self.runtime, self._pp + 16, buf)  # p.buf (no mlookup): the old buffer is garbage now
                self._buf, self._buf_cap = buf, cap
            length = need
        if not self._wrote:
            self._allocate((_WRITE_ITAB,))
            self._wrote = True

    # ------------------------------------------------------------ replaying blocks

    def _type(self, name: str, array: bool):
        t = self._types.get(name)
        if t is None:
            size, pointers = GO_TYPES[name]
            t = self._types[name] = self.heap.register_type(name, size, pointers)
        return t

    def _allocate(self, blocks) -> list[int]:
        h = self.heap
        out: list[int] = []
        pending_free = 0
        for block in blocks:
            if block.stack:
                p = h.alloc(block.size, nogc=True, noprofile=True, zeroed=False, dogc=block.dogc)
            elif block.type is not None:
                p = h.alloc(block.size, type=self._type(block.type, block.array), dogc=block.dogc)
            else:
                p = h.alloc(block.size, noscan=block.noscan, zeroed=block.zeroed, dogc=block.dogc)
            if pending_free:
                h.free(pending_free)
                pending_free = 0
            out.append(p)
            if block.stack:
                continue
            if block.fate is Fate.FREED_AFTER_NEXT:
                pending_free = p
            elif block.fate is Fate.LIVE:
                h.roots.add(p)  # a package variable or a runtime structure: alive for the whole process
                if block.finalizer:
                    h.set_finalizer(p, _close_file)
        if pending_free:
            h.free(pending_free)
        return out

    def close(self) -> None:
        self.heap.close()

    def __enter__(self) -> GoProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _close_file(p: int) -> None:
    """(*os.file).close: never runs, the files stay reachable from os.Stdin/Stdout/Stderr."""
