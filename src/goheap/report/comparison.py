"""The comparison report of a sweep: one self-contained HTML file over many runs.

Built from a sweep's results directory (:class:`goheap.sweep.ResultsDir`): the runs' JSON
records and the sweep's description. Per source (a trace or a workload), because runs of
different programs are not comparable:

* **heap over time**: every run's HeapAlloc curve overlaid, against the recorded run's
  clock when the trace has one (an execution trace), else against the bytes allocated so
  far (TotalAlloc: the same program allocates the same bytes under any setting, so the
  curves line up);
* **Pareto plots**: peak HeapAlloc and peak resident heap against the number of
  collections and against the total pause, one labelled point per run, the runs no other
  run beats on both counts joined by a line;

then, over all runs, **per-class fragmentation** (the share of each size class's spans
not in objects, at each run's peak of HeapInuse) by policy, a **sortable table** of every
run (click a column's header), and the failed runs with their errors.

Figures are matplotlib SVG inlined in the page; the table's sorting is a few lines of
inline script. Nothing is fetched, so the file opens offline.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .html import _CSS, _cards, _e, _figure
from .plots import _figure as _new_figure
from .plots import _scaled, _style, format_bytes

__all__ = ["build_comparison", "pareto_front", "write_comparison"]

# the table's columns: (column, header, kind) with kind "bytes", "int", "ns", "float", "pct" or "text"
_TABLE = (
    ("num_gc", "NumGC", "int"),
    ("pause_total_ns", "total pause", "ns"),
    ("pause_max_ns", "longest pause", "ns"),
    ("peak_heap_alloc", "peak HeapAlloc", "bytes"),
    ("peak_heap_inuse", "peak HeapInuse", "bytes"),
    ("peak_heap_sys", "peak HeapSys", "bytes"),
    ("peak_resident", "peak resident", "bytes"),
    ("fragmentation", "fragmentation", "pct"),
    ("total_alloc", "TotalAlloc", "bytes"),
    ("recorded_num_gc", "recorded NumGC", "int"),
    ("cpu_s", "CPU s", "float"),
)
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var up = th.getAttribute("data-order") !== "up";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-order"); });
      th.setAttribute("data-order", up ? "up" : "down");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
        var nx = parseFloat(x), ny = parseFloat(y), c;
        if (x === "" || y === "") { c = (x === "") - (y === ""); return c; }
        c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return up ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""
_EXTRA_CSS = """
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th[data-order=up]::after { content: " \\25B2"; }
table.sortable th[data-order=down]::after { content: " \\25BC"; }
table.sortable td.failed { color: #c53030; }
table.sortable td:first-child { font-family: ui-monospace, monospace; font-size: 12px; text-align: left; }
.scroll { overflow-x: auto; }
"""


def pareto_front(x: Sequence[float], y: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both x and y (lower is better), by x."""
    order = sorted(range(len(x)), key=lambda i: (x[i], y[i]))
    front, best = [], math.inf
    for i in order:
        if y[i] < best:
            front.append(i)
            best = y[i]
    return front


def _varying(rows: Sequence[Mapping[str, Any]], axes: Sequence[str]) -> list[str]:
    return [a for a in axes if len({repr(r.get(a)) for r in rows}) > 1]


def _short_label(row: Mapping[str, Any], varying: Sequence[str], show) -> str:
    parts = [f"{a}={show(a, row.get(a))}" for a in varying if row.get(a) is not None]
    return " ".join(parts) or row["label"]


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ---------------------------------------------------------------- figures


def plot_heap_overlay(records: Sequence[Mapping[str, Any]], labels: Sequence[str]):
    """Every run's HeapAlloc overlaid: against the recorded run's time when every run has it, else TotalAlloc."""
    fig = _new_figure(10, 4.6)
    ax = fig.subplots()
    _style(ax)
    on_clock = bool(records) and all("time_ns" in r["curve"] for r in records)
    key = "time_ns" if on_clock else "total_alloc"
    curves = [(np.asarray(r["curve"][key], float), np.asarray(r["curve"]["heap_alloc"], float)) for r in records]
    xmax = max((float(x.max()) for x, _ in curves if len(x)), default=1.0)
    ymax = max((float(y.max()) for _, y in curves if len(y)), default=1.0)
    if on_clock:
        dx = 1e9
        ax.set_xlabel("time in the recorded run (s)")
    else:
        dx = _scaled(ax, "x", xmax, "allocated so far, TotalAlloc")
    dy = _scaled(ax, "y", ymax, "HeapAlloc")
    for (x, y), label, color in zip(curves, labels, _colors(len(curves))):
        ax.plot(x / dx, y / dy, color=color, linewidth=1.0, label=label, alpha=0.9)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return fig


def plot_pareto(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], virtual_clock: bool):
    """Peak HeapAlloc and peak resident heap against NumGC and total pause, a point per run."""
    fig = _new_figure(10, 7.2)
    axes = fig.subplots(2, 2)
    xs = (("num_gc", "collections (NumGC)", 1.0), ("pause_total_ns", "total pause (ms)", 1e-6))
    ys = (("peak_heap_alloc", "peak HeapAlloc"), ("peak_resident", "peak resident heap"))
    colors = _colors(len(rows))
    for i, (ykey, ylabel) in enumerate(ys):
        for j, (xkey, xlabel, scale) in enumerate(xs):
            ax = axes[i][j]
            _style(ax)
            x = [float(r[xkey]) * scale for r in rows]
            y = [float(r[ykey]) for r in rows]
            dy = _scaled(ax, "y", max(y, default=1.0), ylabel)
            ax.set_xlabel(xlabel)
            if xkey == "pause_total_ns" and not any(x):
                ax.text(0.5, 0.5, "virtual clock: pauses take no time" if virtual_clock else "no pauses",
                        ha="center", va="center", transform=ax.transAxes, color="#718096")  # fmt: skip
                continue
            front = pareto_front(x, y)
            if len(front) > 1:
                ax.step([x[k] for k in front], [y[k] / dy for k in front], where="post", color="#a0aec0",
                        linewidth=1.0, zorder=1, label="Pareto front")  # fmt: skip
            for k in range(len(rows)):
                ax.scatter([x[k]], [y[k] / dy], s=28 if k in front else 18, color=colors[k], zorder=2,
                           edgecolors="#1a202c" if k in front else "none", linewidths=0.8)  # fmt: skip
                ax.annotate(labels[k], (x[k], y[k] / dy), fontsize=6.5, xytext=(4, 3), textcoords="offset points",
                            color="#2d3748")  # fmt: skip
            ax.set_ylim(bottom=0, top=max(y) / dy * 1.12 if max(y) else 1)
            ax.set_xlim(left=0, right=max(x) * 1.15 if max(x) else 1)
    return fig


def class_fragmentation(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(object size, bytes in spans, bytes not in objects) per size, summed over the runs' peaks."""
    spans: dict[int, int] = {}
    waste: dict[int, int] = {}
    for r in records:
        occ = r.get("occupancy_at_peak") or {}
        for cls, size, in_spans, in_use in zip(occ.get("sizeclass", []), occ.get("size", []),
                                               occ.get("bytes_in_spans", []), occ.get("bytes_in_use", [])):  # fmt: skip
            if cls == 0:
                continue  # a large object fills its span: nothing to waste
            spans[size] = spans.get(size, 0) + in_spans
            waste[size] = waste.get(size, 0) + in_spans - in_use
    sizes = np.array(sorted(spans), np.int64)
    return sizes, np.array([spans[s] for s in sizes], np.int64), np.array([waste[s] for s in sizes], np.int64)


def plot_fragmentation(groups: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]):
    """Per size class, the bytes of its spans not in objects (free slots and tail waste), and
    their share of the class's spans; one line per group."""
    fig = _new_figure(10, 5.4)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1])
    for ax in (top, bottom):
        _style(ax)
    data = [(name, *class_fragmentation(recs)) for name, recs in groups]
    largest = max((float(w.max()) for _, sizes, _, w in data if len(sizes)), default=1.0)
    dy = _scaled(top, "y", largest, "not in objects")
    for (name, sizes, in_spans, waste), color in zip(data, _colors(len(data))):
        if not len(sizes):
            continue
        share = np.divide(waste, in_spans, out=np.zeros(len(sizes)), where=in_spans > 0) * 100
        label = f"{name}: {waste.sum() / max(in_spans.sum(), 1):.1%} of {format_bytes(in_spans.sum())} in small-object spans"
        top.plot(sizes, waste / dy, marker="o", markersize=3, linewidth=1.0, color=color, label=label)
        bottom.plot(sizes, share, marker="o", markersize=3, linewidth=1.0, color=color)
    bottom.set_xscale("log", base=2)
    bottom.xaxis.set_major_formatter(lambda v, _pos: format_bytes(v))
    bottom.set_xlabel("object size of the class")
    bottom.set_ylabel("share of the class's spans (%)")
    bottom.set_ylim(0, 100)
    top.set_ylim(bottom=0)
    top.legend(loc="upper left", fontsize=8, frameon=False)
    return fig


# ---------------------------------------------------------------- the page


def _cell(kind: str, value: Any) -> tuple[str, str]:
    """(display text, sort value) of a table cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "", ""
    if kind == "bytes":
        return format_bytes(value), str(value)
    if kind == "ns":
        return f"{value / 1e6:,.1f} ms", str(value)
    if kind == "pct":
        return f"{value:.1%}", str(value)
    if kind == "float":
        return f"{value:.2f}", str(value)
    if kind == "int":
        return f"{value:,}", str(value)
    return str(value), str(value)


def _sortable_table(rows: Sequence[Mapping[str, Any]], axes: Sequence[str], show) -> str:
    columns = [("run_id", "run", "text"), ("source", "source", "text")]
    columns += [(a, a, "text") for a in axes]
    columns += [("status", "status", "text"), *_TABLE]
    head = "".join(f"<th>{_e(h)}</th>" for _, h, _ in columns)
    body = []
    for r in rows:
        cells = []
        for key, _, kind in columns:
            value = r.get(key)
            if key in axes:
                text, sort = (show(key, value), str(value)) if value is not None else ("", "")
            else:
                text, sort = _cell(kind, value)
            cls = ' class="failed"' if key == "status" and value != "ok" else ""
            cells.append(f'<td{cls} data-v="{_e(sort)}">{_e(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def build_comparison(
    records: Sequence[Mapping[str, Any]],
    *,
    axes: Sequence[str],
    show=lambda axis, value: str(value),
    group_by: str | None = None,
    title: str = "goheap sweep",
    subtitle: str = "",
    info: Mapping[str, str] | None = None,
) -> str:
    """The report as an HTML string.

    records: the runs' JSON records (:meth:`goheap.sweep.ResultsDir.records`); axes: the
    grid's axis names (columns of the rows); show(axis, value): a value as text;
    group_by: the axis whose values the fragmentation plot compares (all runs as one
    group when None or when it has one value).
    """
    from ..sweep.results import table_row

    rows = [table_row(dict(r)) for r in records]
    ok = [(rec, row) for rec, row in zip(records, rows) if row["status"] == "ok"]
    failed = [row for row in rows if row["status"] != "ok"]
    virtual = bool(rows) and all(r["clock"] == "virtual" for r in rows)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}{_EXTRA_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(subtitle)}</p>' if subtitle else "",
        _cards([("runs", f"{len(rows):,}"), ("done", f"{len(ok):,}"), ("failed", f"{len(failed):,}"),
                ("sources", f"{len({r['source'] for r in rows}):,}")]),  # fmt: skip
    ]
    if info:
        parts.append("<table><tbody>" + "".join(
            f"<tr><td class='k'>{_e(k)}</td><td class='d'>{_e(v)}</td></tr>" for k, v in info.items()) + "</tbody></table>")  # fmt: skip
    sources: dict[str, list] = {}
    for rec, row in ok:
        sources.setdefault(row["source"], []).append((rec, row))
    for source, runs in sources.items():
        srows = [row for _, row in runs]
        varying = _varying(srows, axes)
        labels = [_short_label(row, varying, show) for row in srows]
        parts.append(f"<h2>{_e(source)}: heap over time</h2>")
        recs = [rec for rec, _ in runs]
        if all("time_ns" in rec["curve"] for rec in recs):
            axis = ("against the recorded run's clock: each point is placed at the time the recorded program "
                    "made the allocation replayed last, so the curves line up with the program's own timeline")  # fmt: skip
        else:
            axis = ("against the bytes allocated so far: every run of one program allocates the same bytes, so "
                    "the curves line up (the trace has no clock: an allocfreetrace log)"
                    if srows[0]["source_kind"] == "trace" else
                    "against the bytes allocated so far: every run of one program allocates the same bytes, so "
                    "the curves line up")  # fmt: skip
        parts.append(_figure(plot_heap_overlay(recs, labels),
                             "HeapAlloc of each run, sampled as it ran and at the start and end of each collection, "
                             f"{axis}; they part where the collector's pacing differs."))  # fmt: skip
        parts.append(f"<h2>{_e(source)}: heap against collections and pauses</h2>")
        pause_note = ("On the virtual clock pauses take no time. " if virtual else
                      "Pauses are goheap's own compiled collector's, on this machine's clock, not a Go binary's. ")  # fmt: skip
        parts.append(_figure(plot_pareto(srows, labels, virtual),
                             "One point per run. A run on the grey line is on the Pareto front: no other run has both "
                             "a smaller peak and fewer collections (or less pause); outlined points are on it. "
                             + pause_note + "The peak resident heap is the arena, bitmap and metadata pages "
                             "actually paged in."))  # fmt: skip
    if ok:
        groups = [("all runs", [rec for rec, _ in ok])]
        if group_by is not None:
            values: dict[str, list] = {}
            for rec, row in ok:
                values.setdefault(show(group_by, row.get(group_by)), []).append(rec)
            if len(values) > 1:
                groups = [(f"{group_by}={k}", v) for k, v in values.items()]
        parts.append("<h2>Fragmentation per size class" + (f" by {_e(group_by)}" if len(groups) > 1 else "") + "</h2>")
        parts.append(_figure(plot_fragmentation(groups),
                             "At each run's peak of HeapInuse, summed over the runs of each group: the bytes of each "
                             "size class's spans not in objects (free slots, and the tail each span leaves after its "
                             "last slot), and their share of the class's spans (a class with few objects can waste "
                             "most of its one span). Large objects fill their spans and are left out."))  # fmt: skip
    parts.append("<h2>All runs</h2>")
    parts.append('<p class="note">Click a column to sort by it (again to reverse). A run is named by its id: '
                 '<code>goheap diff DIR:ID DIR:ID</code> compares two, field by field.</p>')
    parts.append(_sortable_table(rows, axes, show))
    if failed:
        parts.append("<h2>Failed runs</h2>")
        parts.append("<table><tbody>" + "".join(
            f"<tr><td class='k'>{_e(r['label'])}</td><td class='d'>{_e(r['error'])}</td></tr>" for r in failed) + "</tbody></table>")  # fmt: skip
    parts += [
        f"<footer>goheap {_e(__version__)}: the Go runtime's allocator and collector of February 2013 "
        f"(commit 8a6ff3ab). Written {_e(datetime.datetime.now().isoformat(timespec='seconds'))}.</footer>",
        f"<script>{_SORT_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def write_comparison(path: str | os.PathLike[str], results_dir: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write the comparison report of the sweep in ``results_dir`` to ``path`` (atomically); returns the path."""
    from ..sweep.results import ResultsDir, table_row, write_text
    from ..sweep.spec import AXES

    results = ResultsDir(results_dir)
    meta = json.loads((results.path / "sweep.json").read_text())
    records = results.records()
    grid = meta.get("grid", {})
    rows = [table_row(r) for r in records]
    # an axis no run has a value of (mode for workloads, limits left to the policy) is no column
    axes = [a for a in AXES if a in grid and any(row[a] is not None for row in rows)]
    info = {
        "sources": ", ".join(meta.get("sources", [])),
        "grid": "; ".join(f"{a}: {', '.join(grid[a])}" for a in axes),
        "clock": meta.get("clock", ""),
        "results": str(results.path),
    }
    text = build_comparison(
        records,
        axes=axes,
        show=lambda axis, value: AXES[axis].show(value) if value is not None else "",
        group_by="policy",
        title=title or f"goheap sweep: {', '.join(meta.get('sources', []))}",
        subtitle=f"{len(records)} runs of goheap's model of the February 2013 Go runtime, compared",
        info=info,
    )
    out = Path(path)
    write_text(out, text)
    return out
