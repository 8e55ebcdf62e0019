"""goheap.workloads.seedrun: reading a seed run's MemStats dump."""

from __future__ import annotations

import pytest

from goheap.workloads.seedrun import SeedRun, SeedRunFormatError

pytestmark = pytest.mark.nojit


def test_indexed_keys_are_read() -> None:
    run = SeedRun.from_text("hello\n# MemStats\nPauseNs[gc2]=700\nBySize[1].Size=8\nBySize[1].Mallocs=3\nBySize[1].Frees=1\nNumGC=2\n")
    assert run.lines == ["hello"]
    assert run.pause_ns == {2: 700}
    assert run.by_size == [(8, 3, 1)]
    assert run.memstats["NumGC"] == 2


@pytest.mark.parametrize("key", ["BySize[x].Size", "BySize[3]", "PauseNs[gcX]"])
def test_a_malformed_indexed_key_is_a_format_error(key: str) -> None:
    # these raised AttributeError or ValueError before
    with pytest.raises(SeedRunFormatError, match=rf"run\.stdout:2: .*{key[:6]}"):
        SeedRun.from_text(f"# MemStats\n{key}=1\n", name="run")
