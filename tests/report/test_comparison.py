"""The sweep's comparison report: one self-contained page, rendered by a real browser, its table sortable."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from heaptools import program_trace

from goheap.report import browser
from goheap.report.comparison import pareto_front, write_comparison
from goheap.sweep.driver import run_sweep
from goheap.sweep.spec import build_spec

chromium = pytest.mark.skipif(browser.find_chromium() is None, reason="no Chromium found (apt-get install chromium)")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("comparison")
    good, bad = d / "good.trace.npz", d / "bad.trace.npz"
    program_trace().save(good)
    program_trace(500, big=1 << 50).save(bad)
    spec = build_spec(traces=[str(good), str(bad)], gogc=["25", "100", "400"], mode=["gc", "free"])
    outcome = run_sweep(spec, d / "out", serial=True)
    assert (outcome.ok, outcome.failed) == (6, 6)
    return write_comparison(d / "sweep.html", d / "out")


def test_the_report_is_one_self_contained_file(report):
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count("<svg") == 3  # heap over time, Pareto, fragmentation (one source succeeded)
    assert "<link" not in text and not re.search(r"""(src|href)\s*=\s*["'](?!#|data:)""", text)
    assert text.count("<script>") == 1 and "<script src" not in text
    assert text.count("<tr><td") >= 12  # a row per run in the table (and the failed runs listed)
    assert "Failed runs" in text and "ReplayError" in text
    assert "own compiled collector" in text and "virtual clock" not in text  # pauses on the real clock


@chromium
def test_the_report_renders_and_its_table_sorts(report):
    # click "NumGC" twice; read the column after each click
    script = """(function () {
      var table = document.querySelector("table.sortable");
      var col = Array.prototype.findIndex.call(table.tHead.rows[0].cells, function (c) { return c.textContent === "NumGC"; });
      function column() { return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[col].getAttribute("data-v"); }); }
      table.tHead.rows[0].cells[col].click();
      var up = column();
      table.tHead.rows[0].cells[col].click();
      return [up, column()];
    })()"""
    page = browser.render(report, width=1200, height=900, evaluate=script)
    assert page.console_errors == []
    assert page.title.startswith("goheap sweep: good.trace.npz")
    up, down = page.value
    numbers = [float(v) for v in up if v]
    assert numbers == sorted(numbers) and len(numbers) == 6 and up[-6:] == [""] * 6  # failed runs have none: last
    assert [float(v) for v in down if v] == sorted(numbers, reverse=True)
    _assert_drawn(page.png, page.width)


def _assert_drawn(png: bytes, width: int) -> None:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape[1] == width and img.shape[0] > 1500
    assert (img < 245).any(axis=2).mean() > 0.04
    assert len(np.unique(img.reshape(-1, 3)[::7], axis=0)) > 50


@pytest.mark.nojit
def test_the_heap_overlay_is_on_the_recorded_clock_when_every_run_has_one():
    from goheap.report.comparison import plot_heap_overlay

    timed = {"curve": {"total_alloc": [0, 10, 20], "heap_alloc": [0, 5, 2], "time_ns": [0, 10**9, 2 * 10**9]}}
    untimed = {"curve": {"total_alloc": [0, 10, 20], "heap_alloc": [0, 5, 2]}}
    assert "recorded run" in plot_heap_overlay([timed, timed], ["a", "b"]).axes[0].get_xlabel()
    assert "TotalAlloc" in plot_heap_overlay([timed, untimed], ["a", "b"]).axes[0].get_xlabel()


@pytest.mark.nojit
def test_pareto_front():
    x = [1, 2, 3, 4, 2]
    y = [5, 3, 4, 1, 6]
    assert pareto_front(x, y) == [0, 1, 3]
    assert pareto_front([], []) == []


def test_the_readme_picture_is_a_sweep_report_screenshot():
    """docs/sweep.png is remade by docs/make_sweep_png.py (the README's sweep command, rendered as above)."""
    from pathlib import Path

    from PIL import Image

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    assert "docs/sweep.png" in readme and "goheap sweep --trace bt12.trace.npz --gogc 25,50,100,200 --policy seed,modern --mode gc,free" in readme
    script = (root / "docs" / "make_sweep_png.py").read_text()
    assert '"--gogc", "25,50,100,200", "--policy", "seed,modern",\n' in script and '"--mode", "gc,free",' in script
    with Image.open(root / "docs" / "sweep.png") as img:
        assert img.format == "PNG" and img.size == (1200, 1700)
