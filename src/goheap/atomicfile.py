"""Output files that appear whole or not at all: every file goheap writes goes through here.

A file is written under a temporary name in its destination's directory (a hidden
``.NAME.XXXXXX.goheap-tmp``) and renamed over the final name only when it is complete, so
an error, Ctrl-C or SIGTERM at any point leaves nothing under the final name (and an
existing file there untouched), and the temporary file is removed. Several files can be
committed together (:class:`PendingFiles`): ``goheap run --report R --heap-profile P``
renames both at the very end, so an interruption while the report is written does not
leave the profile behind.

The temporary name is never shown: an ``OSError`` raised while writing names the final
path. The live temporary names are also kept in a registry, so that a process that must
exit at once (a second Ctrl-C) can still remove them (:func:`remove_all_pending`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["PendingFiles", "atomic_write", "probe_writable", "remove_all_pending"]

TEMP_SUFFIX = ".goheap-tmp"

_live: set[str] = set()
_live_lock = threading.Lock()


def _temporary_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _renamed(exc: OSError, temporary: Path, final: Path) -> OSError:
    """``exc`` with the final name in place of the temporary one (never shown to a user)."""
    if exc.filename is not None and os.fspath(exc.filename) == os.fspath(temporary):
        return type(exc)(exc.errno, exc.strerror, os.fspath(final))
    return exc


def remove_all_pending() -> None:
    """Remove every temporary file still being written (for an immediate exit)."""
    with _live_lock:
        names = list(_live)
        _live.clear()
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(name)


class PendingFiles:
    """Files written under temporary names, renamed to their final names together by :meth:`commit`.

    Use as a context manager: leaving it by an exception (or without a commit) removes
    every temporary file. ``path(final)`` gives the temporary path to write for ``final``
    (the caller writes it by any means); ``open(final, mode)`` opens it.
    """

    def __init__(self) -> None:
        self._files: dict[Path, Path] = {}  # final -> temporary

    def path(self, final: str | os.PathLike[str]) -> Path:
        final = Path(final)
        if final not in self._files:
            temporary = _temporary_name(final)
            with _live_lock:
                _live.add(os.fspath(temporary))
            self._files[final] = temporary
        return self._files[final]

    def open(self, final: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> IO[Any]:
        temporary = self.path(final)
        try:
            f = open(temporary, mode, **kwargs)  # noqa: SIM115 - the caller closes it
        except OSError as exc:
            raise _renamed(exc, temporary, Path(final)) from None
        return f

    @contextlib.contextmanager
    def writing(self, final: str | os.PathLike[str]) -> Iterator[Path]:
        """The temporary path for ``final``; an OSError inside names ``final`` instead."""
        temporary = self.path(final)
        try:
            yield temporary
        except OSError as exc:
            raise _renamed(exc, temporary, Path(final)) from None

    def commit(self) -> None:
        """Rename every file to its final name, in the order they were added."""
        for final, temporary in list(self._files.items()):
            try:
                os.replace(temporary, final)
            except OSError as exc:
                raise _renamed(exc, temporary, final) from None
            with _live_lock:
                _live.discard(os.fspath(temporary))
            del self._files[final]

    def discard(self) -> None:
        """Remove every temporary file not yet committed."""
        for temporary in self._files.values():
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            with _live_lock:
                _live.discard(os.fspath(temporary))
        self._files.clear()

    def __enter__(self) -> PendingFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it appears only complete (see the module docstring).

    ``mode`` is ``"wb"`` or ``"w"`` (text: pass ``encoding``). On an exception nothing is
    left under ``path`` and an existing file there is unchanged.
    """
    with PendingFiles() as pending:
        with pending.writing(path), pending.open(path, mode, **kwargs) as f:
            yield f
        pending.commit()


def probe_writable(path: str | os.PathLike[str]) -> None:
    """Raise OSError (naming ``path``) unless a file could be written at ``path`` now.

    Creates and removes a temporary file in its directory, as the real write will: the
    only check that also holds for read-only mounts, /proc and full quotas.
    """
    with PendingFiles() as pending, pending.open(path, "wb"):
        pass
