"""What every ``goheap`` command shares: one error style, output-path checks, GOGC flags, signals.

Errors
    Every error, click's usage errors included, is one line on stderr and exit status 2::

        goheap run: error: cannot write /nonexistent/x.stdout: no such directory /nonexistent

    A command raises :func:`fail` (or lets a :class:`goheap.HeapError` or an ``OSError``
    naming a file escape); :class:`GoheapGroup` prints it. Ctrl-C and SIGTERM stop the
    command cleanly (:mod:`goheap.interrupts`) and print one line saying what was lost,
    with exit status 130 and 143.

Outputs
    :func:`check_outputs` runs before any work: every output's directory exists and is
    writable, no output is a directory, an input or another output (compared by inode, so
    ``x.log`` and ``./x.log`` or a hard link are the same file). Every file is then written
    through :mod:`goheap.atomicfile`: complete or not at all.

GOGC
    :data:`GOGC_FLAG` parses ``--gogc`` strictly (N >= 0, ``off`` or ``OFF``); the
    environment variable is read as the seed reads it (:func:`goheap.heap.readgogc`:
    ``off``, else the leading digits, so ``GOGC=-5`` is 0). :func:`gogc_setting` says
    which one was used and where it came from.

This module is imported by ``goheap --help``: it must not import the compiled runtime.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import click

from .atomicfile import probe_writable
from .errors import HeapError
from .interrupts import Interrupted, handling_signals, interrupt_caught

__all__ = [
    "ERROR_STATUS",
    "GOGC_FLAG",
    "GOGC_MAX",
    "CommandError",
    "GoheapGroup",
    "check_outputs",
    "describe_gogc",
    "fail",
    "gogc_setting",
    "on_interrupt",
    "parse_gogc_flag",
]

#: Exit status of every error (as Go's flag package and click's usage errors use).
ERROR_STATUS = 2


class CommandError(click.ClickException):
    """An error a user can fix: printed as one ``goheap CMD: error: ...`` line, exit status 2."""

    exit_code = ERROR_STATUS

    def __init__(self, message: str) -> None:
        super().__init__(message)
        ctx = click.get_current_context(silent=True)
        self.command_path = ctx.command_path if ctx is not None else None


def fail(message: str) -> CommandError:
    """The error to raise from a command: ``raise fail(f"cannot read {path}: ...")``."""
    return CommandError(message)


# ------------------------------------------------------------------ what an interruption loses

_interrupt_note = ["stopped before it finished; nothing was written"]


def on_interrupt(note: str) -> None:
    """What the command loses if it is interrupted now (printed after ``interrupted (SIGINT):``)."""
    _interrupt_note[0] = note


# ------------------------------------------------------------------ the group


def _command_path(group: click.Group, args: list[str]) -> str:
    """``goheap`` and the subcommand names at the start of ``args`` (``goheap trace import``)."""
    names = ["goheap"]
    command: click.Command = group
    for arg in args:
        if not isinstance(command, click.Group) or arg not in command.commands:
            break
        command = command.commands[arg]
        names.append(arg)
    return " ".join(names)


def _os_error_text(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{os.fspath(exc.filename)}: {what[:1].lower() + what[1:]}"
    return what


class GoheapGroup(click.Group):
    """A click group whose ``main`` prints every error in goheap's one style (see the module docstring)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        args = sys.argv[1:] if args is None else list(args)
        _interrupt_note[0] = "stopped before it finished; nothing was written"
        path = _command_path(self, args)
        status = 0
        def report_interrupt(exc: Interrupted) -> None:
            _print_error(path, f"interrupted ({exc.signal_name}): {_interrupt_note[0]}", label=None)

        with handling_signals(on_lost=report_interrupt):
            try:
                with self.make_context("goheap", args, **extra) as ctx:
                    self.invoke(ctx)
            except click.exceptions.Exit as exc:
                status = exc.exit_code
            except Interrupted as exc:
                interrupt_caught()
                report_interrupt(exc)
                status = exc.exit_status
            except click.Abort:
                _print_error(path, "aborted", label=None)
                status = 130
            except click.UsageError as exc:
                where = exc.ctx.command_path if exc.ctx is not None else path
                _print_error(where, f"{exc.format_message()} (see '{where} --help')")
                status = ERROR_STATUS
            except CommandError as exc:
                _print_error(exc.command_path or path, exc.format_message())
                status = ERROR_STATUS
            except click.ClickException as exc:
                _print_error(path, exc.format_message())
                status = ERROR_STATUS
            except HeapError as exc:
                _print_error(path, str(exc))
                status = ERROR_STATUS
            except BrokenPipeError:
                # stdout went away (goheap ... | head): stop quietly, as Go's programs do
                _silence_stdout()
                status = 128 + 13
            except OSError as exc:
                _print_error(path, _os_error_text(exc))
                status = ERROR_STATUS
            except MemoryError:
                _print_error(path, "out of memory")
                status = ERROR_STATUS
        sys.exit(status)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _print_error(command_path: str, message: str, label: str | None = "error") -> None:
    text = " ".join(message.split("\n"))
    click.echo(f"{command_path}: {label + ': ' if label else ''}{text}", err=True)


# ------------------------------------------------------------------ output paths


def _file_identity(path: Path) -> tuple[int, int, str]:
    """(device, inode, "") of an existing file, else (device, inode, name) of its directory and name."""
    try:
        st = os.stat(path)
        return (st.st_dev, st.st_ino, "")
    except OSError:
        parent = os.stat(path.parent if str(path.parent) else ".")
        return (parent.st_dev, parent.st_ino, path.name)


def _input_identity(path: str | os.PathLike[str]) -> tuple[int, int, str] | None:
    try:
        st = os.fstat(sys.stdin.fileno()) if os.fspath(path) == "-" else os.stat(path)
    except (OSError, ValueError, AttributeError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None  # a pipe or a device cannot be overwritten by a rename
    return (st.st_dev, st.st_ino, "")


def check_outputs(
    outputs: Mapping[str, str | os.PathLike[str] | None] | Iterable[tuple[str, str | os.PathLike[str] | None]],
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
) -> None:
    """Refuse, before any work, outputs that cannot be written or would clobber an input or each other.

    ``outputs`` and ``inputs`` map a label for messages (``"--report"``, ``"the trace"``)
    to a path (None: not given); ``outputs`` may also be (label, path) pairs, for an
    option that writes several files. Raises :class:`CommandError`.
    """
    seen: dict[tuple[int, int, str], str] = {}
    for label, path in (inputs or {}).items():
        if path is None:
            continue
        identity = _input_identity(path)
        if identity is not None:
            seen[identity] = f"{label} {os.fspath(path)}"
    for label, given in outputs.items() if isinstance(outputs, Mapping) else outputs:
        if given is None:
            continue
        path = Path(given)
        if path.is_dir():
            raise fail(f"{label} {path}: is a directory")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise fail(f"cannot write {label} {path}: no such directory {parent}")
        identity = _file_identity(path)
        if identity in seen:
            other = seen[identity]
            what = "is" if identity[2] == "" else "would be"
            raise fail(f"{label} {path} {what} the same file as {other}: refusing to overwrite it")
        seen[identity] = f"{label} {path}"
        try:
            probe_writable(path)
        except OSError as exc:
            raise fail(f"cannot write {label} {path}: {(exc.strerror or str(exc)).lower()}") from None


# ------------------------------------------------------------------ GOGC

#: The largest GC percent: the seed keeps gcpercent in an int32.
GOGC_MAX = (1 << 31) - 1


def parse_gogc_flag(text: str) -> int:
    """``--gogc``: a GC percent N >= 0, or ``off``/``OFF`` (-1). Raises ValueError otherwise.

    Stricter than the environment variable (read as the seed reads it, see
    :func:`gogc_setting`): a flag is typed on purpose, so ``-5`` or ``50%`` is refused
    rather than read as 0 or 50.
    """
    value = text.strip()
    if value in ("off", "OFF"):
        return -1
    if value.isascii() and value.isdigit() and int(value) <= GOGC_MAX:
        return int(value)
    raise ValueError(f"GOGC must be a percentage N >= 0 (at most {GOGC_MAX}) or 'off', not {text!r}")


class _GogcParam(click.ParamType):
    name = "N|off"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_gogc_flag(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


#: The click type of every ``--gogc`` option.
GOGC_FLAG = _GogcParam()


def gogc_setting(flag: int | None, environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(GC percent, where it came from): the flag, else $GOGC as the seed reads it, else 100."""
    from ._runtime.goenv import readgogc

    if flag is not None:
        return flag, "--gogc"
    env = os.environ if environ is None else environ
    raw = env.get("GOGC")
    if raw is None or raw == "":
        return 100, "default"
    value = readgogc(raw)
    exact = raw == "off" or (raw.isascii() and raw.isdigit() and int(raw) == value)
    return value, f"$GOGC={raw!r}" + ("" if exact else ", read as the 2013 runtime's atoi reads it")


def describe_gogc(value: int, source: str) -> str:
    """``GOGC=100 (default)``, ``GOGC=off (--gogc)``."""
    return f"GOGC={'off' if value < 0 else value} ({source})"
