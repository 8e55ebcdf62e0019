"""The report's figures, drawn with matplotlib from :mod:`goheap.inspect` data.

Each ``plot_*`` function takes plain data (a :class:`~goheap.inspect.History`, a
:class:`~goheap.inspect.HeapSnapshot`, arrays) and returns a matplotlib
:class:`~matplotlib.figure.Figure`; :func:`to_svg` renders one as a self-contained SVG
string (text drawn as paths, images embedded), which the HTML report inlines. Figures are
built without pyplot, so nothing here touches global state or needs a display.

Sizes are in bytes and shown in binary units (KiB = 1024 B, MiB = 1024 KiB), as Go's
gctrace and pprof count them.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..inspect import History, PageMapSnapshot, PageState

__all__ = [
    "PAGE_COLORS",
    "format_bytes",
    "plot_class_occupancy",
    "plot_gc_pauses",
    "plot_heap_over_time",
    "plot_span_maps",
    "to_svg",
]

PAGE_SIZE = 4096  # the seed's page, for an empty figure: a page map carries its own

# One colour per PageState, in enum order (colour-blind safe: blue, green, grey, white).
PAGE_COLORS = {
    PageState.UNUSED: "#ffffff",
    PageState.IN_USE: "#2b6cb0",
    PageState.FREE: "#9ad0a0",
    PageState.RELEASED: "#c8c8c8",
}
PAGE_LABELS = {
    PageState.IN_USE: "in use",
    PageState.FREE: "free",
    PageState.RELEASED: "released to the OS",
    PageState.UNUSED: "no span",
}
_BEYOND = len(PageState)  # image cells past the end of the mapped arena
_PAGE_CMAP = ListedColormap([PAGE_COLORS[s] for s in PageState] + ["#f4f4f4"])

COLORS = {
    "heap_alloc": "#2b6cb0",
    "next_gc": "#d97706",
    "heap_sys": "#4a5568",
    "heap_released": "#9f7aea",
    "rss": "#c53030",
    "mark": "#2b6cb0",
    "sweep": "#38a169",
    "other": "#a0aec0",
    "in_use": "#2b6cb0",
    "free_slots": "#9ad0a0",
    "tail_waste": "#e53e3e",
}


def format_bytes(n: float, _pos=None) -> str:
    """1536 -> '1.5 KiB': a byte count in the largest binary unit that keeps it >= 1."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            if unit == "B" or n == int(n) or abs(n) >= 100:
                return f"{n:.0f} {unit}"
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def byte_unit(largest: float) -> tuple[int, str]:
    """(divisor, name) of the binary unit to show values up to ``largest`` bytes in."""
    for shift, name in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if largest >= 2 << shift:
            return 1 << shift, name
    return 1, "bytes"


def _scaled(ax, axis: str, largest: float, label: str) -> int:
    """Label ``ax``'s x or y axis in the unit that suits ``largest`` bytes; returns the divisor to plot with."""
    div, name = byte_unit(largest)
    getattr(ax, f"set_{axis}label")(f"{label} ({name})" if label else name)
    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"))
    return div


def to_svg(fig: Figure) -> str:
    """The figure as an SVG document (a string, without the XML prolog), for inlining in HTML."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _style(ax) -> None:
    ax.grid(True, color="#e2e8f0", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


# ================================================================ heap over time


def heap_alloc_curve(history: History) -> tuple[np.ndarray, np.ndarray]:
    """(total_alloc, heap_alloc) of every sample and of each collection's start and end, in order.

    Each collection adds two points at the same x (heap_alloc before and after it): the
    curve saw-tooths as the heap fills and is collected.
    """
    s = history.samples
    c = history.collections
    x = np.concatenate([s["total_alloc"], c["total_alloc"], c["total_alloc"]]).astype(np.float64)
    y = np.concatenate([s["heap_alloc"], c["heap_before"], c["heap_after"]]).astype(np.float64)
    # at equal x: samples' own order is kept; a collection's "before" precedes its "after"
    rank = np.concatenate([np.zeros(len(s)), np.ones(len(c)), np.full(len(c), 2)])
    order = np.lexsort((rank, x))
    return x[order], y[order]


def plot_heap_over_time(history: History) -> Figure:
    """HeapAlloc (saw-tooth through the collections), NextGC, HeapSys, HeapReleased; the heap's resident memory below."""
    s = history.samples
    c = history.collections
    fig = _figure(10, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.2])
    for ax in (top, bottom):
        _style(ax)
    if not len(s):
        top.text(0.5, 0.5, "no samples", ha="center", va="center", transform=top.transAxes)
        return fig
    x, y = heap_alloc_curve(history)
    largest = max(float(s["heap_sys"].max()), float(y.max()), float(c["next_gc"].max()) if len(c) else 0.0)
    dy = _scaled(top, "y", largest, "heap")
    dx = _scaled(bottom, "x", float(s["total_alloc"].max()), "allocated so far, TotalAlloc")
    top.plot(x / dx, y / dy, color=COLORS["heap_alloc"], linewidth=1.1, label="HeapAlloc")
    if len(c):
        # next_gc is set by each collection and holds until the next one
        nx = np.append(c["total_alloc"], s["total_alloc"][-1]) / dx
        ny = np.append(c["next_gc"], c["next_gc"][-1]) / dy
        top.step(nx, ny, where="post", color=COLORS["next_gc"], linewidth=1.2, linestyle="--", label="NextGC (GC trigger)")
    top.step(s["total_alloc"] / dx, s["heap_sys"] / dy, where="post", color=COLORS["heap_sys"], linewidth=1.3, label="HeapSys")
    released = "HeapReleased" if s["heap_released"].any() else "HeapReleased (0 throughout)"
    top.step(s["total_alloc"] / dx, s["heap_released"] / dy, where="post", color=COLORS["heap_released"], linewidth=1.2, label=released)
    top.set_ylim(bottom=0, top=largest / dy * 1.05)
    top.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, frameon=False, ncol=4)
    dr = _scaled(bottom, "y", float(s["heap_rss"].max()), "resident")
    bottom.plot(s["total_alloc"] / dx, s["heap_rss"] / dr, color=COLORS["rss"], linewidth=1.3,
                label="the heap's resident memory (arena, bitmap, metadata; mincore)")
    bottom.set_ylim(0, max(float(s["heap_rss"].max()) / dr * 1.15, 1.0))
    bottom.legend(loc="lower right", fontsize=8, frameon=False)
    bottom.set_xlim(left=0)
    return fig


# ================================================================ collections


def plot_gc_pauses(history: History, *, virtual_clock: bool = False) -> Figure:
    """Each collection's stop-the-world pause, split into mark, sweep and the rest."""
    c = history.collections
    fig = _figure(10, 3.0)
    ax = fig.subplots()
    _style(ax)
    if len(c):
        n = c["num_gc"]
        ms = 1e-6
        width = 0.8 if len(c) < 400 else 1.0
        mark, sweep, other = c["mark_ns"] * ms, c["sweep_ns"] * ms, c["other_ns"] * ms
        ax.bar(n, mark, width, color=COLORS["mark"], label="mark", linewidth=0)
        ax.bar(n, sweep, width, bottom=mark, color=COLORS["sweep"], label="sweep", linewidth=0)
        ax.bar(n, other, width, bottom=mark + sweep, color=COLORS["other"], label="other (stop and start the world)", linewidth=0)
        ax.set_xlim(0.3, n.max() + 0.7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, frameon=False, ncol=3)
        if virtual_clock and not c["pause_ns"].any():
            ax.text(0.5, 0.5, "virtual clock: pauses take no time", ha="center", va="center",
                    transform=ax.transAxes, color="#718096")
    else:
        ax.text(0.5, 0.5, "no collections", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("collection (NumGC)")
    ax.set_ylabel("pause (ms)")
    ax.set_ylim(bottom=0)
    return fig


# ================================================================ size classes


def plot_class_occupancy(occupancy: np.ndarray) -> Figure:
    """Per size class in use: bytes in objects, in free slots and in tail waste (together, the class's spans).

    Left, in bytes; right, as shares of the class's spans (its fragmentation).
    """
    occ = occupancy[occupancy["nspans"] > 0]
    rows = list(occ[occ["sizeclass"] > 0]) + list(occ[occ["sizeclass"] == 0])
    fig = _figure(10, 1.1 + 0.2 * max(len(rows), 2))
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[2.2, 1])
    for ax in (left, right):
        _style(ax)
    if not rows:
        left.text(0.5, 0.5, "no spans in use", ha="center", va="center", transform=left.transAxes)
        return fig
    labels = [f"{r['sizeclass']}: {format_bytes(r['size'])}" if r["sizeclass"] else "large" for r in rows]
    y = np.arange(len(rows))[::-1]
    parts = (
        (np.array([r["bytes_in_use"] for r in rows], np.float64), "in use (HeapAlloc)", COLORS["in_use"]),
        (np.array([r["free_slots"] * r["size"] for r in rows], np.float64), "free slots", COLORS["free_slots"]),
        (np.array([r["tail_waste"] for r in rows], np.float64), "tail waste", COLORS["tail_waste"]),
    )
    spans_bytes = parts[0][0] + parts[1][0] + parts[2][0]
    div = _scaled(left, "x", float(spans_bytes.max()), "bytes in the class's spans")
    base = np.zeros(len(rows))
    share_base = np.zeros(len(rows))
    for values, label, color in parts:
        left.barh(y, values / div, left=base / div, color=color, label=label, height=0.78, linewidth=0)
        share = np.divide(values, spans_bytes, out=np.zeros_like(values), where=spans_bytes > 0) * 100
        right.barh(y, share, left=share_base, color=color, height=0.78, linewidth=0)
        base += values
        share_base += share
    left.set_yticks(y, labels, fontsize=7)
    left.set_ylabel("size class: object size", fontsize=8)
    left.set_ylim(-0.6, len(rows) - 0.4)
    left.set_xlim(0, spans_bytes.max() / div * 1.02)
    left.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, frameon=False, ncol=3)
    right.set_xlim(0, 100)
    right.set_xlabel("share of the class's spans (%)")
    whole, used = spans_bytes.sum(), parts[0][0].sum()
    right.set_title(f"{(whole - used) / whole:.1%} of all span bytes not in use", fontsize=8, loc="left")
    return fig


# ================================================================ the span map


def _row_pages(npages: int) -> int:
    """Pages per image row: 1 MiB (256 pages), doubled until the picture has at most 192 rows."""
    width = 256
    while npages > width * 192:
        width *= 2
    return width


def page_grid(pages: np.ndarray, width: int, nrows: int) -> np.ndarray:
    """The page states laid out ``width`` pages a row, padded to ``nrows`` rows past the arena's end."""
    grid = np.full(width * nrows, _BEYOND, np.uint8)
    grid[: len(pages)] = pages
    return grid.reshape(nrows, width)


def plot_span_maps(maps: list[tuple[str, PageMapSnapshot | None]]) -> Figure:
    """The arena's pages, side by side for each (title, snapshot): in use, free, released."""
    shown = [(t, m) for t, m in maps if m is not None]
    npages = max((len(m.pages) for _, m in shown), default=0)
    width = _row_pages(max(npages, 1))
    nrows = max(-(-npages // width), 1)
    fig = _figure(10, 1.5 + min(max(nrows * 0.045, 1.8), 7.5))
    axes = fig.subplots(1, max(len(shown), 1), squeeze=False, sharey=True)[0]
    page_size = shown[0][1].page_size if shown else PAGE_SIZE
    row_bytes = width * page_size
    dy, unit = byte_unit(nrows * row_bytes)
    dx, xunit = byte_unit(row_bytes)
    for i, (ax, (title, m)) in enumerate(zip(axes, shown)):
        grid = page_grid(m.pages, width, nrows)
        ax.imshow(grid, cmap=_PAGE_CMAP, vmin=0, vmax=_BEYOND, interpolation="nearest", aspect="auto",
                  extent=(0, row_bytes / dx, nrows * row_bytes / dy, 0))
        ax.set_title(f"{title}: in use {format_bytes(m.heap_inuse)}, free {format_bytes(m.heap_idle - m.heap_released)}, "
                     f"released {format_bytes(m.heap_released)}", loc="left", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(f"offset within the row ({xunit})", fontsize=8)
        if i == 0:
            ax.set_ylabel(f"offset from the arena's start ({unit})", fontsize=8)
    if not shown:
        axes[0].text(0.5, 0.5, "no page map", ha="center", va="center", transform=axes[0].transAxes)
    handles = [Patch(facecolor=PAGE_COLORS[s], edgecolor="#a0aec0", label=PAGE_LABELS[s])
               for s in (PageState.IN_USE, PageState.FREE, PageState.RELEASED)]
    handles.append(Patch(facecolor="#f4f4f4", edgecolor="#a0aec0", label="arena not mapped yet"))
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    return fig


# ================================================================ a replay beside its recording


def plot_recorded_vs_replayed(
    *,
    x_label: str,
    recorded_x: np.ndarray,
    recorded_live: np.ndarray,
    goheap_x: np.ndarray,
    goheap_heap: np.ndarray,
    goheap_next_gc: np.ndarray,
    metric_x: np.ndarray | None = None,
    metric: np.ndarray | None = None,
    recorded_gcs: np.ndarray | None = None,
    goheap_gcs: np.ndarray | None = None,
    x_scale: float = 1.0,
) -> Figure:
    """The recorded run's live heap beside goheap's HeapAlloc over one axis (time or events).

    recorded_live: bytes allocated and not yet freed in the recording; metric: the
    recording's own HeapAlloc metric (execution traces); recorded_gcs / goheap_gcs: where
    each run started a collection (ticks along the top and bottom). x values are divided by
    ``x_scale`` for display.
    """
    fig = _figure(10, 4.2)
    ax = fig.subplots()
    _style(ax)
    series = [recorded_live, goheap_heap, goheap_next_gc] + ([metric] if metric is not None and len(metric) else [])
    largest = max((float(np.max(s)) for s in series if len(s)), default=1.0)
    dy = _scaled(ax, "y", largest, "heap")
    ax.plot(recorded_x / x_scale, recorded_live / dy, color="#718096", linewidth=1.2,
            label="recorded: allocated, not yet freed")  # fmt: skip
    if metric is not None and len(metric):
        assert metric_x is not None  # given with metric
        ax.step(metric_x / x_scale, metric / dy, where="post", color="#38a169", linewidth=1.0,
                label="recorded: the runtime's HeapAlloc metric")  # fmt: skip
    ax.plot(goheap_x / x_scale, goheap_heap / dy, color=COLORS["heap_alloc"], linewidth=1.3, label="goheap: HeapAlloc")
    ax.step(goheap_x / x_scale, goheap_next_gc / dy, where="post", color=COLORS["next_gc"], linewidth=1.0,
            linestyle="--", label="goheap: NextGC")  # fmt: skip
    top = largest / dy * 1.08
    for xs, y, color, label in ((recorded_gcs, top * 0.985, "#718096", "recorded collection"),
                                (goheap_gcs, top * 0.955, COLORS["heap_alloc"], "goheap collection")):  # fmt: skip
        if xs is not None and len(xs):
            ax.plot(xs / x_scale, np.full(len(xs), y), linestyle="none", marker="|", markersize=9, color=color, label=label)
    ax.set_ylim(0, top)
    ax.set_xlim(left=0)
    ax.set_xlabel(x_label)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, frameon=False, ncol=3)
    return fig
