"""The pacer: the heap goal (next_gc) and the scavenger's goal. See "Policies" in :mod:`goheap._runtime.malloc`.

The seed's rule, at the end of each collection: next_gc = heap_alloc + heap_alloc x
GOGC/100, in integer arithmetic, from 0 before the first. A policy adds, as data in the
heap's state, the two rules of later Go pacers (runtime/mgcpacer.go of Go 1.27):

- a heap minimum (``h[H_MIN_HEAP]``, 4 MB x GOGC/100 in Go >= 1.5): the goal never falls
  below it, and it is the first goal (Go's gcinit commits with nothing marked);
- a soft memory limit (``h[H_MEMORY_LIMIT]``, Go >= 1.19's GOMEMLIMIT): the goal is the
  smaller of the GOGC goal and memoryLimitHeapGoal's,

      goal = limit - (nonheap + overage),  less max(3% of it, 1 MB) of headroom
      nonheap = mapped_ready - heap_free - heap_alloc
      overage = max(mapped_ready - limit, 0)

  never below the live heap. mapped_ready is the memory the runtime has mapped and not
  released: Sys - HeapReleased, where the seed's MHeap record counts only the span map
  of the arena in use (the seed SysAllocs the whole 256 MB map up front; Go has mapped
  it lazily since 1.2). heap_free is HeapIdle - HeapReleased.

Where the live heap exceeds the limit, Go's goal falls to the live heap and its GC CPU
limiter caps the collector at 50% of the CPU while the program keeps allocating. A
stop-the-world collector has nothing to cap: with the goal at the live heap it would
collect at every cache refill. goheap keeps Go's minimum runway instead (64 KB, the
pacer's minRunway): past the limit it collects once per 64 KB allocated, and HeapAlloc
exceeds the limit by the excess of the live heap plus at most that.

The seed's state has no minimum and no limit, and this computes its formula exactly.
"""

from __future__ import annotations

from ._jit import jit
from .layout import (
    H_ARENA_START,
    H_ARENA_USED,
    H_GCPERCENT,
    H_HEAP_MARKED,
    H_MEMORY_LIMIT,
    H_MIN_HEAP,
    H_PAGE_SHIFT,
    H_SCAVENGE_GOAL,
    H_SCAVENGE_RETAIN,
    H_SPANMAP_SYS,
    ST_HEAP_ALLOC,
    ST_HEAP_IDLE,
    ST_HEAP_INUSE,
    ST_HEAP_RELEASED,
    ST_NEXT_GC,
    ST_SYS,
)

INT64_MAX = (1 << 63) - 1
MEMORY_LIMIT_HEADROOM_PERCENT = 3  # memoryLimitHeapGoalHeadroomPercent
MEMORY_LIMIT_MIN_HEADROOM = 1 << 20  # memoryLimitMinHeapGoalHeadroom
MIN_RUNWAY = 64 << 10  # minRunway: the least heap growth between two collections
SCAVENGE_LIMIT_PERCENT = 95  # the scavenger keeps mapped memory under (100 - reduceExtraPercent)% of a limit
PHYS_PAGE_SIZE = 4096  # the scavenger's goal is rounded to OS pages


@jit
def mapped_ready(rt):
    """Memory the runtime has mapped and not released, as a memory limit counts it (see the module docstring)."""
    spanmap_used = ((rt.h[H_ARENA_USED] - rt.h[H_ARENA_START]) >> rt.h[H_PAGE_SHIFT]) * 8
    return rt.mstats[ST_SYS] - rt.mstats[ST_HEAP_RELEASED] - rt.h[H_SPANMAP_SYS] + spanmap_used


@jit
def memory_limit_goal(rt, heap_marked):
    """memoryLimitHeapGoal: the heap goal that keeps mapped memory under the limit, at least heap_marked + 64 KB."""
    limit = rt.h[H_MEMORY_LIMIT]
    st = rt.mstats
    ready = mapped_ready(rt)
    nonheap = ready - (st[ST_HEAP_IDLE] - st[ST_HEAP_RELEASED]) - st[ST_HEAP_ALLOC]
    overage = ready - limit if ready > limit else 0
    if nonheap + overage >= limit:
        goal = heap_marked
    else:
        goal = limit - (nonheap + overage)
        headroom = goal // 100 * MEMORY_LIMIT_HEADROOM_PERCENT
        if headroom < MEMORY_LIMIT_MIN_HEADROOM:
            headroom = MEMORY_LIMIT_MIN_HEADROOM
        if goal < 2 * headroom:
            goal = headroom
        else:
            goal -= headroom
        if goal < heap_marked:
            goal = heap_marked
    if goal < heap_marked + MIN_RUNWAY:
        goal = heap_marked + MIN_RUNWAY
    return goal


@jit
def heap_goal(rt):
    """next_gc: the GOGC goal over the heap marked by the last collection, floored by the heap
    minimum, lowered to the memory limit's goal (INT64_MAX with GOGC=off and no limit)."""
    heap_marked = rt.h[H_HEAP_MARKED]
    goal = INT64_MAX
    gcpercent = rt.h[H_GCPERCENT]
    if gcpercent >= 0:
        goal = heap_marked + heap_marked * gcpercent // 100
        if goal < rt.h[H_MIN_HEAP]:
            goal = rt.h[H_MIN_HEAP]
    if rt.h[H_MEMORY_LIMIT] >= 0:
        limit_goal = memory_limit_goal(rt, heap_marked)
        if limit_goal < goal:
            goal = limit_goal
    return goal


@jit
def pace_scavenger(rt, last_goal):
    """gcPaceScavenger, at the end of a collection: the retained heap to keep until the next.

    Go 1.19's rule: the heap in use at this collection, scaled by how the goal moved
    (new goal / the goal of the cycle that just ended), plus retain% (``h[H_SCAVENGE_RETAIN]``),
    rounded up to an OS page. None (INT64_MAX) after the first collection, as in Go.
    """
    if rt.h[H_SCAVENGE_RETAIN] < 0:
        return
    goal = INT64_MAX
    new_goal = rt.mstats[ST_NEXT_GC]
    if last_goal > 0 and new_goal < INT64_MAX:
        goal = int(rt.mstats[ST_HEAP_INUSE] * (new_goal / last_goal))
        goal += goal * rt.h[H_SCAVENGE_RETAIN] // 100
        goal = (goal + PHYS_PAGE_SIZE - 1) & ~(PHYS_PAGE_SIZE - 1)
    rt.h[H_SCAVENGE_GOAL] = goal


@jit
def scavenge_need(rt, growth):
    """Bytes the scavenger's goals want released now, before the heap grows by ``growth`` bytes.

    Over the retained-heap goal by at least a page: the excess, at most the growth when the
    heap is growing (Go scavenges as much as it grows). Under a memory limit: what takes
    mapped memory down to 95% of it. 0 when the policy has no such scavenger.
    """
    if rt.h[H_SCAVENGE_RETAIN] < 0:
        return 0
    st = rt.mstats
    need = 0
    retained = st[ST_HEAP_INUSE] + st[ST_HEAP_IDLE] - st[ST_HEAP_RELEASED]
    excess = retained + growth - rt.h[H_SCAVENGE_GOAL]
    if excess >= PHYS_PAGE_SIZE:
        need = excess
        if growth > 0 and need > growth:
            need = growth
    limit = rt.h[H_MEMORY_LIMIT]
    if limit >= 0:
        over = mapped_ready(rt) + growth - limit // 100 * SCAVENGE_LIMIT_PERCENT
        if over > need:
            need = over
    return need
