"""Loaded into gdb by tools/oracle_trace.py: watch a program of the 2013 oracle toolchain run.

ORACLE_MODE selects what is logged to ORACLE_OUT:

* ``allocs``: every allocation (size, flag, dogc, zeroed, the Go type settype gets, the
  call stack) and every runtime·free until main.main starts, then those made inside the
  library calls main makes (fmt, time, strconv, ReadMemStats); and, at the end of each
  collection, which of the logged blocks it swept.
* ``calls``: for every library call main.* makes, the words below the caller's sp the
  call writes (the dead stack is poisoned first).
* ``runtime``: the same for the calls of ORACLE_ENTRY (runtime.new, runtime.makeslice)
  from the functions ORACLE_CALLERS, grouped by the paths the allocation took (refill,
  span growth, zeroing, settype flush, profile sample, collection), with the words that
  receive the new block marked ``:v``.

Stack words are numbered from the caller's sp down: 1 is the callee's return PC.
"""

import bisect
import collections
import os
import subprocess

import gdb

gdb.execute("set pagination off")
gdb.execute("set breakpoint pending on")
gdb.execute("set startup-with-shell off")

MODE = os.environ["ORACLE_MODE"]
OUT = open(os.environ["ORACLE_OUT"], "w")
BINARY = os.environ["ORACLE_BINARY"]
POISON = 0x0000DEAD0000BEE0  # never a heap address, nor a value the runtime writes
LIB_ENTRIES = ["fmt.Printf", "fmt.Println", "time.Now", "time.Since", "strconv.Atoi", "runtime.ReadMemStats", "main.dumpMemStats"]
M_SETTYPE_BUF = 0x3F0  # offsets in the 2013 amd64 M and MHeap structs (from the disassembly)
MHEAP_ARENA_START = 0x10006890

SYMS = []
for line in subprocess.run(["nm", "-n", BINARY], capture_output=True, text=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3:
        SYMS.append((int(parts[0], 16), parts[2]))
ADDRS = [a for a, _ in SYMS]


def symbol(addr):
    i = bisect.bisect_right(ADDRS, addr) - 1
    if i < 0:
        return hex(addr)
    a, n = SYMS[i]
    return n if a == addr else f"{n}+{addr - a:#x}"


def rsp():
    return int(gdb.newest_frame().read_register("rsp"))


def word(addr):
    return int.from_bytes(gdb.selected_inferior().read_memory(addr, 8).tobytes(), "little")


def poison(lo, n):
    gdb.selected_inferior().write_memory(lo, POISON.to_bytes(8, "little") * n)


def callers(n=12):
    f = gdb.newest_frame().older()
    names = []
    while f is not None and len(names) < n:
        names.append(f.name() or hex(f.pc()))
        f = f.older()
    return names


class Returns:
    """One breakpoint per return address; calls to it matched by their stack pointer."""

    def __init__(self, on_return):
        self.on_return = on_return
        self.stack = []
        self.bps = {}

    def push(self, ret, sp_after, data):
        if ret not in self.bps:
            owner = self

            class Ret(gdb.Breakpoint):
                def stop(self):
                    if owner.stack and owner.stack[-1][0] == ret and rsp() == owner.stack[-1][1]:
                        owner.on_return(owner.stack.pop()[2])
                    return False

            self.bps[ret] = Ret(f"*{ret:#x}", internal=True)
        self.stack.append((ret, sp_after, data))


# ---------------------------------------------------------------- allocs

STATE = {"main": False, "depth": 0}
LIVE = {}


def allocated(addr):
    mheap = word(next(a for a, n in SYMS if n == "runtime.mheap"))
    arena = word(mheap + MHEAP_ARENA_START)
    off = (addr - arena) // 8
    return (word(arena - (off // 16 + 1) * 8) >> (off % 16)) & 1


class Done(gdb.FinishBreakpoint):
    def __init__(self, frame, text):
        super().__init__(frame, internal=True)
        self.text = text

    def stop(self):
        v = int(gdb.newest_frame().read_register("rax")) & 0xFFFFFFFFFFFFFFFF
        OUT.write(f"ALLOC {v:#x} {self.text}\n")
        if "flag=0x6" not in self.text:
            LIVE[v] = self.text
        return False


class Malloc(gdb.Breakpoint):
    def stop(self):
        sp = rsp()
        w = word(sp + 16)
        names = callers()
        typ = "-"
        if names and names[0] == "runtime.new":
            typ = symbol(word(sp + 0x48))
        elif names and names[0] == "makeslice1":
            typ = "[]" + symbol(word(word(sp + 0x50) + 0x38))
        text = f"{word(sp + 8)} flag={w & 0xffffffff:#x} dogc={w >> 32} zeroed={word(sp + 24) & 0xffffffff} type={typ} {'<'.join(names)}"
        Done(gdb.newest_frame(), text)
        return False


class Free(gdb.Breakpoint):
    def stop(self):
        v = word(rsp() + 8)
        OUT.write(f"FREE {v:#x} {'<'.join(callers())}\n")
        LIVE.pop(v, None)
        return False


class GCEnd(gdb.Breakpoint):
    def stop(self):
        for addr in list(LIVE):
            if not allocated(addr):
                OUT.write(f"SWEPT {addr:#x} {LIVE.pop(addr)}\n")
        OUT.write("GC\n")
        return False


def trace_allocs():
    malloc = Malloc("runtime.mallocgc", internal=True)
    free = Free("runtime.free", internal=True)

    def on_return(_):
        STATE["depth"] -= 1
        OUT.write("END\n")
        if STATE["depth"] == 0:
            malloc.enabled = free.enabled = False

    returns = Returns(on_return)

    class Lib(gdb.Breakpoint):
        def stop(self):
            caller = gdb.newest_frame().older()
            if not STATE["main"] or caller is None or not (caller.name() or "").startswith("main."):
                return False
            OUT.write(f"BEGIN {self.location} from {caller.name()}\n")
            STATE["depth"] += 1
            malloc.enabled = free.enabled = True
            returns.push(word(rsp()), rsp() + 8, None)
            return False

    class Main(gdb.Breakpoint):
        def stop(self):
            STATE["main"] = True
            OUT.write("MAIN\n")
            malloc.enabled = free.enabled = False
            return False

    Main("main.main", internal=True)
    GCEnd("runtime.MProf_GC", internal=True)
    for e in LIB_ENTRIES:
        Lib(e, internal=True)


# ---------------------------------------------------------------- calls


def written(lo, sp_caller):
    """The word numbers below the caller's sp that are not the poison any more."""
    n = (sp_caller - lo) // 8
    mem = gdb.selected_inferior().read_memory(lo, n * 8).tobytes()
    out = {}
    for i in range(n):
        w = int.from_bytes(mem[8 * i : 8 * i + 8], "little")
        if w != POISON:
            out[(sp_caller - (lo + 8 * i)) // 8] = w
    return out


def trace_calls():
    def on_return(data):
        name, sp_caller, lo = data
        ks = sorted(written(lo, sp_caller))
        OUT.write(f"CALL {name} words={','.join(map(str, ks))}\n")

    returns = Returns(on_return)

    class Lib(gdb.Breakpoint):
        def stop(self):
            caller = gdb.newest_frame().older()
            if caller is None or not (caller.name() or "").startswith("main."):
                return False
            sp = rsp()
            g = word(int(gdb.newest_frame().read_register("fs_base")) - 0x10)
            lo = word(g) - 256  # stackguard - StackGuard: the segment's lowest word
            ret = word(sp)
            poison(lo, (sp - lo) // 8)
            returns.push(ret, sp + 8, (f"{self.location}@{caller.name()}:{ret:#x}", sp + 8, lo))
            return False

    for e in LIB_ENTRIES:
        Lib(e, internal=True)


# ---------------------------------------------------------------- runtime

DEPTH = 200
PATHS = [
    ("refill", "runtime.MCentral_AllocList"),
    ("grow", "runtime.MCentral_Grow"),
    ("heap", "runtime.MHeap_Alloc"),
    ("memclr", "runtime.memclr"),
    ("flush", "runtime.settype_flush"),
    ("prof", "runtime.MProf_Malloc"),
    ("gc", "runtime.gc"),
]


def trace_runtime():
    entry = os.environ.get("ORACLE_ENTRY", "runtime.new")
    calling = tuple(os.environ.get("ORACLE_CALLERS", "main.bottomUp").split(","))
    result = int(os.environ.get("ORACLE_RESULT", "8"))  # where the caller finds the new block
    masks = collections.Counter()
    flags = set()
    current = {}

    class Flag(gdb.Breakpoint):
        def stop(self):
            if current:
                flags.add(self.tag)
            return False

    def on_return(data):
        sp_caller, lo = data
        v = word(sp_caller + result)
        words = []
        for k, w in sorted(written(lo, sp_caller).items()):
            words.append(f"{k}:v" if w == v else str(k))
        masks[(",".join(sorted(flags)), " ".join(words))] += 1
        flags.clear()
        current.clear()

    returns = Returns(on_return)

    class Entry(gdb.Breakpoint):
        def stop(self):
            caller = gdb.newest_frame().older()
            if caller is None or (caller.name() or "") not in calling:
                return False
            sp = rsp()
            ret = word(sp)
            poison(sp + 8 - 8 * DEPTH, DEPTH)
            gdb.selected_inferior().write_memory(sp, ret.to_bytes(8, "little"))
            current["on"] = True
            returns.push(ret, sp + 8, (sp + 8, sp + 8 - 8 * DEPTH))
            return False

    Entry(entry, internal=True)
    for tag, loc in PATHS:
        Flag(loc, internal=True).tag = tag

    def dump(_event=None):
        for (fl, words), count in masks.most_common():
            OUT.write(f"{count} [{fl}] {words}\n")
        OUT.flush()

    gdb.events.exited.connect(dump)


{"allocs": trace_allocs, "calls": trace_calls, "runtime": trace_runtime}[MODE]()
gdb.execute("run")
OUT.close()
