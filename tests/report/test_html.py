"""The HTML report: built from goheap.inspect, self-contained, and rendered by a real browser without errors."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from click.testing import CliRunner

import goheap
from goheap.cli import main
from goheap.inspect import History
from goheap.report import browser, plots
from goheap.report.html import build_report, write_report
from goheap.report.pprof import read_profile
from goheap.workloads import run_workload

chromium = pytest.mark.skipif(browser.find_chromium() is None, reason="no Chromium found (apt-get install chromium)")


def make_report(path, workload: str = "binarytrees", args: tuple[str, ...] = ("10",), *extra: str):
    """``goheap run WORKLOAD ARGS --report PATH``: the report as the command line writes it."""
    result = CliRunner().invoke(main, ["run", "--report", str(path), *extra, workload, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "binarytrees.html"
    make_report(path, "binarytrees", ("10",), "--gogc", "50")
    return path


def test_report_is_one_self_contained_file(report):
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count("<svg") >= 4  # heap over time, pauses, size classes, span map
    # nothing to fetch: no scripts, no stylesheets, no links or images by URL
    assert "<script" not in text and "<link" not in text
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#|data:)""", text)
    assert "<title>binarytrees 10</title>" in text


def test_report_has_the_runs_memstats(report):
    text = report.read_text()
    result = run_workload("binarytrees", ["10"], gcpercent=50, gctrace=0, trace_stream=io.StringIO())
    ms = result.memstats
    for field, value in (("HeapSys", ms.heap_sys), ("Mallocs", ms.mallocs), ("NumGC", ms.num_gc), ("TotalAlloc", ms.total_alloc)):
        assert re.search(rf"<td class='k'>{field}</td><td>{value:,}</td>", text), field
    assert "GOGC</td><td class='d'>50<" in text


@chromium
def test_report_renders_in_chromium_without_console_errors(report):
    page = browser.render(report, width=1200, height=900)
    assert page.console_errors == []
    assert page.title == "binarytrees 10"
    assert page.height > 2000  # every section laid out, not an error page
    _assert_not_blank(page.png, page.width, page.height)


@chromium
def test_console_errors_are_caught(tmp_path):
    """The check above can fail: a script error, console.error and a missing image are all reported."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><p>x</p><img src="missing.png"><script>console.error("boom"); nope();</script></body></html>')
    errors = " | ".join(browser.render(bad).console_errors)
    assert "boom" in errors and "nope is not defined" in errors and "missing.png" in errors


@pytest.mark.nojit
def test_find_chromium_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "no-such-browser"))
    assert browser.find_chromium() is None
    with pytest.raises(browser.BrowserError, match="no Chromium"):
        browser.render(tmp_path / "x.html")


def _assert_not_blank(png: bytes, width: int, height: int) -> None:
    from PIL import Image  # matplotlib's own dependency

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape[1] == width and img.shape[0] >= 900
    nonwhite = (img < 245).any(axis=2).mean()
    colours = len(np.unique(img.reshape(-1, 3)[::7], axis=0))
    assert nonwhite > 0.05, f"only {nonwhite:.1%} of the page is drawn on"
    assert colours > 50, f"only {colours} colours"
    blue = np.array([0x2B, 0x6C, 0xB0])  # in-use pages and HeapAlloc: the figures were drawn
    assert (np.abs(img.astype(int) - blue).sum(axis=2) < 30).mean() > 0.005


def test_heap_profile_and_memprofilerate_options(tmp_path):
    prof = tmp_path / "heap.pb.gz"
    result = CliRunner().invoke(main, ["run", "--heap-profile", str(prof), "--memprofilerate", "1024", "binarytrees", "8"])
    assert result.exit_code == 0, result.output
    p = read_profile(prof)
    assert p.period == 1024
    assert "main.bottomUp" in {p.string_table[f.name] for f in p.function}
    result = CliRunner().invoke(main, ["run", "--memprofilerate", "0", "--json", "binarytrees", "8"])
    assert '"BuckHashSys": 0' in result.output
    result = CliRunner().invoke(main, ["run", "--memprofilerate", "-1", "binarytrees", "8"])
    assert result.exit_code == 2


def test_unwritable_report_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(main, ["run", "--report", str(tmp_path / "no" / "such" / "dir.html"), "binarytrees", "6"])
    assert result.exit_code == 2 and "cannot write" in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------- the API replay and others call


def test_write_report_from_a_heap_and_a_history(tmp_path):
    """What a trace replay does: sample as it goes, then hand the open heap and the history over."""
    history = History()
    with goheap.Heap(arena_size=64 << 20, virtual_clock=True) as h:
        keep = []
        for i in range(3000):
            p = h.alloc(24 + (i % 7) * 40, noscan=True)
            if i % 3 == 0:
                keep.append(h.roots.add(p))
            if i % 100 == 0:
                history(h)
        h.free_os_memory()
        path = write_report(tmp_path / "r.html", history, h, title="api", run_info={"trace": "none"})
    text = path.read_text()
    assert "<title>api</title>" in text and "released" in text
    assert history.final is not None and history.final.mem_stats.heap_released > 0
    assert len(history.collections) == history.final.mem_stats.num_gc


@pytest.mark.nojit
def test_a_history_must_be_finished():
    with pytest.raises(ValueError, match="finish"):
        build_report(History())


def test_heap_alloc_curve_saw_tooths_through_collections():
    with goheap.Heap(arena_size=64 << 20, virtual_clock=True) as h:
        history = History()
        for _ in range(20):
            for _ in range(300):
                h.alloc(512, noscan=True)
            history(h)
        x, y = plots.heap_alloc_curve(history)
        c = history.collections
    assert len(x) == len(history) + 2 * len(c) and (np.diff(x) >= 0).all()
    drops = np.flatnonzero(np.diff(y) < 0)
    assert len(drops) >= len(c) // 2  # each collection frees the garbage: the curve falls


@pytest.mark.nojit
def test_byte_units_and_page_grid():
    assert plots.byte_unit(100) == (1, "bytes") and plots.byte_unit(3 << 20) == (1 << 20, "MiB")
    assert plots.format_bytes(1536) == "1.5 KiB" and plots.format_bytes(1000 << 20) == "1000 MiB"
    grid = plots.page_grid(np.array([1, 2, 3], np.uint8), 2, 3)
    assert grid.tolist() == [[1, 2], [3, 4], [4, 4]]  # 4: past the mapped arena


def test_the_readme_picture_is_a_report_screenshot():
    """docs/report.png is remade by docs/make_report_png.py (the CLI's --report, rendered as above)."""
    from pathlib import Path

    from PIL import Image

    root = Path(__file__).resolve().parents[2]
    assert "docs/report.png" in (root / "README.md").read_text()
    with Image.open(root / "docs" / "report.png") as img:
        assert img.format == "PNG" and img.size == (1200, 1640)
