"""goheap.atomicfile: outputs appear complete or not at all, under their final names only."""

from __future__ import annotations

from pathlib import Path

import pytest

from goheap.atomicfile import PendingFiles, atomic_write, probe_writable

pytestmark = pytest.mark.nojit


def test_atomic_write_appears_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with atomic_write(out, "w") as f:
        f.write("half")
        assert not out.exists()
    assert out.read_text() == "half" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_write(out, "w") as f:
        f.write("new, half written")
        raise KeyboardInterrupt
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_errors_name_the_final_path_never_the_temporary(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError) as info, atomic_write(blocker / "x.pb.gz"):
        pass
    assert info.value.filename == str(blocker / "x.pb.gz")
    assert "goheap-tmp" not in str(info.value)


def test_pending_files_commit_together_or_not_at_all(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    with PendingFiles() as pending:
        with pending.open(a, "w") as f:
            f.write("a")
        with pending.writing(b) as path:
            path.write_text("b")
        assert not a.exists() and not b.exists()
    assert list(tmp_path.iterdir()) == []  # left without commit: both discarded
    with PendingFiles() as pending:
        with pending.open(a, "w") as f:
            f.write("a")
        pending.commit()
    assert a.read_text() == "a"


def test_probe_writable(tmp_path: Path) -> None:
    probe_writable(tmp_path / "x")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        probe_writable(tmp_path / "missing" / "x")
