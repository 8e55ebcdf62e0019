"""The HTML report: one self-contained file that shows a heap's life and its state at the end.

It is built from :mod:`goheap.inspect` data only: a :class:`~goheap.inspect.History`
recorded during the run, whose :attr:`~goheap.inspect.History.final` snapshot holds the
end state. Figures are matplotlib SVG inlined in the page (see :mod:`goheap.report.plots`);
there is no script and no external resource, so the file opens offline, anywhere.

Sections: a summary of the run, heap over time (HeapAlloc, NextGC, HeapSys, HeapReleased
and the heap's own resident memory against bytes allocated), the GC pauses, the size classes (bytes in
use, free slots and tail waste per class), the arena's span map at the peak of HeapInuse
and at the end, and MemStats as a table.

Any producer of a history can write one: a workload run (``goheap run ... --report``), a
trace replay, a user's own program::

    history = goheap.inspect.History()
    ... call history(heap) now and then (e.g. run_workload(on_tick=history)) ...
    write_report("report.html", history, heap, title="my run")
"""

from __future__ import annotations

import datetime
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..atomicfile import atomic_write
from ..inspect import History, HeapSnapshot, PageState
from . import plots

if TYPE_CHECKING:
    from ..heap import Heap

__all__ = ["build_report", "write_report"]

_CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1a202c;
       margin: 0 auto; max-width: 1060px; padding: 24px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #e2e8f0; padding-bottom: 4px; }
p.sub { color: #4a5568; margin: 0 0 16px; }
p.note { color: #4a5568; font-size: 13px; margin: 4px 0 8px; }
figure { margin: 8px 0; }
figure svg { width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; }
td, th { padding: 3px 10px; border-bottom: 1px solid #edf2f7; text-align: right; }
th { background: #f7fafc; font-weight: 600; }
td.k, th.k { text-align: left; }
td.d { text-align: left; color: #4a5568; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid #e2e8f0; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card .v { font-size: 20px; font-weight: 600; }
.card .l { font-size: 12px; color: #4a5568; }
.cols { display: flex; gap: 32px; flex-wrap: wrap; align-items: flex-start; }
footer { margin-top: 40px; color: #718096; font-size: 12px; }
"""

# MemStats fields in the table, with what they mean (mem.go's comments, shortened)
_MEMSTATS_ROWS = (
    ("Alloc", "alloc", "bytes allocated and not yet freed", True),
    ("TotalAlloc", "total_alloc", "bytes allocated, ever", True),
    ("Sys", "sys", "bytes obtained from the OS", True),
    ("Lookups", "lookups", "pointer lookups", False),
    ("Mallocs", "mallocs", "allocations", False),
    ("Frees", "frees", "frees", False),
    ("HeapAlloc", "heap_alloc", "bytes in allocated objects", True),
    ("HeapSys", "heap_sys", "arena bytes obtained from the OS", True),
    ("HeapIdle", "heap_idle", "bytes in free spans", True),
    ("HeapInuse", "heap_inuse", "bytes in spans in use", True),
    ("HeapReleased", "heap_released", "bytes given back to the OS", True),
    ("HeapObjects", "heap_objects", "objects allocated", False),
    ("StackInuse", "stack_inuse", "stack segments in use", True),
    ("StackSys", "stack_sys", "stack memory from the OS", True),
    ("MSpanInuse", "mspan_inuse", "span records in use", True),
    ("MSpanSys", "mspan_sys", "span records from the OS", True),
    ("MCacheInuse", "mcache_inuse", "cache records in use", True),
    ("MCacheSys", "mcache_sys", "cache records from the OS", True),
    ("BuckHashSys", "buck_hash_sys", "profiling bucket hash table", True),
    ("NextGC", "next_gc", "HeapAlloc that starts the next collection", True),
    ("LastGC", "last_gc", "end of the last collection (ns)", False),
    ("PauseTotalNs", "pause_total_ns", "time stopped for collections (ns)", False),
    ("NumGC", "num_gc", "collections", False),
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _bytes(n: int) -> str:
    return plots.format_bytes(n)


def _table(header: list[str], rows: Sequence[Sequence[object]], left: int = 1, classes: Mapping[int, str] | None = None) -> str:
    def cell(tag, i, v):
        cls = (classes or {}).get(i, "k" if i < left else "")
        return f"<{tag}{f' class={cls!r}' if cls else ''}>{_e(v)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cards(items: list[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{_e(v)}</div><div class="l">{_e(label)}</div></div>' for label, v in items
    ) + "</div>"


def _figure(fig, caption: str = "") -> str:
    svg = plots.to_svg(fig)
    note = f'<p class="note">{_e(caption)}</p>' if caption else ""
    return f"<figure>{svg}</figure>{note}"


def build_report(
    history: History,
    *,
    title: str = "goheap report",
    subtitle: str = "",
    run_info: Mapping[str, object] | None = None,
    sections: list[tuple[str, object, str]] | None = None,
) -> str:
    """The report as an HTML string. ``history`` must be finished (:meth:`History.finish`).

    run_info: extra (label, value) rows for the summary table (the workload and its
    arguments, the trace file replayed, ...). sections: (heading, figure, caption) shown
    first, before the heap over time (a replay's comparison with its recording). The GC
    pauses are left out when every pause took no time (a virtual clock).
    """
    final: HeapSnapshot | None = history.final
    if final is None:
        raise ValueError("the history has no final snapshot: call history.finish(heap) before the heap is closed")
    ms = final.mem_stats
    samples = history.samples
    collections = history.collections
    occ = final.occupancy

    peak_rss = int(samples["rss"].max()) if len(samples) else 0
    peak_heap_rss = int(samples["heap_rss"].max()) if len(samples) else 0
    in_spans = int(occ["bytes_in_spans"].sum())
    in_use = int(occ["bytes_in_use"].sum())
    cards = _cards(
        [
            ("collections (NumGC)", f"{ms.num_gc:,}"),
            ("allocated (TotalAlloc)", _bytes(ms.total_alloc)),
            ("peak HeapInuse", _bytes(max(int(samples["heap_inuse"].max()) if len(samples) else 0, ms.heap_inuse))),
            ("HeapSys", _bytes(ms.heap_sys)),
            ("fragmentation at the end", f"{(in_spans - in_use) / in_spans:.1%}" if in_spans else "-"),
            ("peak heap resident (arena, bitmap, metadata)", _bytes(peak_heap_rss)),
            ("peak process RSS (all of Python)", _bytes(peak_rss)),
        ]
    )
    info: list[list[object]] = [[k, v] for k, v in (run_info or {}).items()]
    info += [
        ["policy", final.policy.summary()],
        ["GOGC", "off" if final.gcpercent < 0 else final.gcpercent],
        ["MemProfileRate", f"{final.mem_profile_rate:,}"],
        ["arena", f"{final.arena_start:#x}, {_bytes(final.arena_size)} reserved, {_bytes(final.arena_used - final.arena_start)} mapped"],
        ["clock", "virtual" if final.virtual_clock else "real"],
        ["samples", f"{len(samples):,} (plus one point per collection)"],
    ]

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(subtitle)}</p>' if subtitle else "",
        cards,
        _table(["run", ""], info, classes={1: "d"}),
        *[f"<h2>{_e(heading)}</h2>" + _figure(fig, caption) for heading, fig, caption in sections or ()],
        "<h2>Heap over time</h2>",
        _figure(plots.plot_heap_over_time(history), _heap_note(collections)),
        *_pauses(history, final),
        "<h2>Size classes and fragmentation</h2>",
        _figure(
            plots.plot_class_occupancy(occ),
            "Each bar is the spans of one size class at the end: bytes in objects in use, in free slots "
            "(on the spans' free lists or in a thread's cache), and the tail each span leaves after its last "
            "slot. The percentage is the share in use.",
        ),
        _occupancy_table(occ),
        "<h2>Span map</h2>",
        _figure(
            plots.plot_span_maps([("at the peak of HeapInuse", history.peak), ("at the end", final.page_map)]),
            _span_map_note(history, final),
        ),
        "<h2>MemStats at the end</h2>",
        '<div class="cols">',
        _memstats_table(ms),
        _gc_table(collections),
        "</div>",
        f"<footer>goheap {_e(__version__)}: the Go runtime's allocator and collector of February 2013 "
        f"(commit 8a6ff3ab){'' if final.policy.is_seed else ', with policy ' + _e(final.policy.name)}. Written {_e(datetime.datetime.now().isoformat(timespec='seconds'))}.</footer>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _pauses(history: History, final: HeapSnapshot) -> list[str]:
    """The GC pauses section, or nothing when no pause took any time (a virtual clock)."""
    collections = history.collections
    if final.virtual_clock and not (len(collections) and collections["pause_ns"].any()):
        return []
    return [
        "<h2>GC pauses</h2>",
        _figure(
            plots.plot_gc_pauses(history, virtual_clock=final.virtual_clock),
            "Each collection stops the world; its pause is split as the seed's gctrace line splits it. The "
            "times are goheap's own (its compiled collector on this machine), not those of a Go binary.",
        ),
    ]


def _heap_note(collections) -> str:
    note = (
        "HeapAlloc is sampled after every chunk of the program and at the start and end of every "
        "collection (their place on the x axis is interpolated between samples). A collection starts "
        "when HeapAlloc, which lags behind in the threads' caches, reaches NextGC."
    )
    if len(collections) and not collections["measured"].all():
        note += (
            " The runtime measures HeapAlloc at the start of a collection only with gctrace on "
            "(--gctrace): without it the curve rises to the trigger each collection crossed."
        )
    return note + (
        " Below, the heap's own resident memory: the arena's pages in use, its bitmap and its"
        " metadata as far as the OS has paged them in (mincore), not the Python process around it."
    )


def _occupancy_table(occ) -> str:
    rows = []
    for r in occ[occ["nspans"] > 0]:
        spans_bytes = int(r["bytes_in_spans"])
        rows.append(
            [
                "large" if r["sizeclass"] == 0 else int(r["sizeclass"]),
                "-" if r["sizeclass"] == 0 else _bytes(int(r["size"])),
                f"{int(r['nspans']):,}",
                f"{int(r['objects']):,}",
                _bytes(int(r["bytes_in_use"])),
                _bytes(spans_bytes),
                f"{int(r['free_slots']):,}",
                _bytes(int(r["tail_waste"])),
                f"{int(r['bytes_in_use']) / spans_bytes:.1%}" if spans_bytes else "-",
            ]
        )
    if not rows:
        return ""
    header = ["class", "size", "spans", "objects", "in use", "in spans", "free slots", "tail waste", "used"]
    return "<details><summary>The numbers</summary>" + _table(header, rows) + "</details>"


def _span_map_note(history: History, final: HeapSnapshot) -> str:
    note = (
        "One cell per 4 KiB runtime page, from the arena's start, a row per stretch of address space. "
        "A free span that was only partly released shows its released pages at its end (the runtime "
        "counts them but does not record which they are)."
    )
    if history.peak is not None:
        counts = history.peak.counts()
        note += (
            f" The peak map is the sample with the most HeapInuse ({counts[PageState.IN_USE]:,} pages, "
            f"after {_bytes(history.peak.total_alloc)} allocated); the heap may have peaked higher between samples."
        )
    return note


def _memstats_table(ms) -> str:
    rows = []
    for go, name, meaning, is_bytes in _MEMSTATS_ROWS:
        v = getattr(ms, name)
        shown = _bytes(v) if is_bytes else (f"{v / 1e9:.6f} s on the heap's clock" if go == "LastGC" else "")
        rows.append([go, f"{v:,}", shown, meaning])
    rows.append(["EnableGC", str(ms.enable_gc).lower(), "", "collection enabled"])
    return _table(["field", "value", "", "meaning"], rows, classes={0: "k", 3: "d"})


def _gc_table(collections) -> str:
    if not len(collections):
        return ""
    ms = 1e-6
    pauses = collections["pause_ns"] * ms
    rows = [
        ["collections", f"{len(collections):,}"],
        ["forced (runtime.GC)", f"{int(collections['forced'].sum()):,}"],
        ["total pause", f"{pauses.sum():.3f} ms"],
        ["mean pause", f"{pauses.mean():.3f} ms"],
        ["longest pause", f"{pauses.max():.3f} ms"],
        ["live heap after the last", _bytes(int(collections["heap_after"][-1]))],
        ["live objects after the last", f"{int(collections['objects_after'][-1]):,}"],
    ]
    return _table(["collections", ""], rows)


def write_report(
    path: str | os.PathLike[str],
    history: History,
    heap: Heap | None = None,
    *,
    title: str = "goheap report",
    subtitle: str = "",
    run_info: Mapping[str, object] | None = None,
    sections: list[tuple[str, object, str]] | None = None,
) -> Path:
    """Write the report to ``path`` (one self-contained HTML file); returns the path.

    ``heap``: if given (and still open), a last sample and the final snapshot are taken
    from it now (:meth:`History.finish`); otherwise the history must be finished already.
    """
    if heap is not None:
        history.finish(heap)
    text = build_report(history, title=title, subtitle=subtitle, run_info=run_info, sections=sections)
    out = Path(path)
    with atomic_write(out, "w", encoding="utf-8") as f:
        f.write(text)
    return out
