"""goheap's public surface: a sorted __all__, every name importable, and public objects that
report the package as their module (so tracebacks and docs read ``goheap.Heap``)."""

from __future__ import annotations

import importlib
import inspect

import pytest

import goheap
import goheap.nb

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)


def test_all_is_sorted_and_unique() -> None:
    assert goheap.__all__ == sorted(goheap.__all__)
    assert len(set(goheap.__all__)) == len(goheap.__all__)
    assert goheap.nb.__all__ == sorted(goheap.nb.__all__)


@pytest.mark.parametrize("name", goheap.__all__)
def test_every_name_is_importable_and_reports_goheap(name: str) -> None:
    obj = getattr(importlib.import_module("goheap"), name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert obj.__module__ == "goheap", f"{name} reports {obj.__module__}"


def test_nothing_public_is_left_out() -> None:
    # dir(), not vars(): most names are imported on first use (PEP 562)
    public = {n for n in dir(goheap) if not n.startswith("_") and not inspect.ismodule(getattr(goheap, n))}
    exported_modules = {n for n in goheap.__all__ if inspect.ismodule(getattr(goheap, n))}
    assert exported_modules <= {"inspect", "race"}  # goheap.inspect and goheap.race are public on purpose
    assert public - {"annotations"} == set(goheap.__all__) - exported_modules


@pytest.mark.parametrize("name", goheap.nb.__all__)
def test_nb_names_are_importable(name: str) -> None:
    assert getattr(goheap.nb, name) is not None
