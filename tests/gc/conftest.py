"""Fixtures shared by the collector's tests; helpers live in ``gcutil.py``."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

import goheap

sys.path.insert(0, str(Path(__file__).parent))

ARENA = 64 << 20


@pytest.fixture
def heap():
    """A small heap with GOGC and GOGCTRACE fixed, so the environment cannot change a test."""
    with goheap.Heap(arena_size=ARENA, gcpercent=100, gctrace=0) as h:
        yield h


@pytest.fixture
def traced():
    """A small heap whose gctrace lines go to a StringIO (``h.trace_stream``)."""
    with goheap.Heap(arena_size=ARENA, gcpercent=100, gctrace=1, trace_stream=io.StringIO()) as h:
        yield h
