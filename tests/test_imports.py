"""What loads when: ``import goheap`` and the commands that need no compiled runtime never import numba.

numba (with LLVM) costs about 0.3 s of CPU and 90 MB to import; ``goheap --help`` and the
trace tools should not pay for it. Each check runs in a fresh interpreter, since this one
has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from goheap.trace import replay as replay_module_function
from goheap.trace.cli import MODES as REPLAY_MODES

LOG = """\
tracealloc(0xc000010000, 0x10, *main.Node)
goroutine 1 [running]:
main.main()
\t/src/x/main.go:10 +0x1

tracefree(0xc000010000, 0x10)
goroutine 0 [idle]:

"""


def _modules_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; which of goheap's heavy dependencies it imported."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print(json.dumps({name: name in sys.modules for name in ("numba", "llvmlite", "goheap.heap")}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_import_goheap_loads_no_compiler() -> None:
    loaded = _modules_after("import goheap, goheap.errors; goheap.HeapError; goheap.SizeClasses")
    assert loaded == {"numba": False, "llvmlite": False, "goheap.heap": False}


_RUN_COMMANDS = """
import contextlib, io
from goheap.cli import main
for args in {commands!r}:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(args, standalone_mode=False)
        except BaseException:
            pass
"""


def test_commands_that_need_no_runtime_do_not_import_numba(tmp_path: Path) -> None:
    log = tmp_path / "prog.log"
    log.write_text(LOG)
    trace = tmp_path / "prog.trace.npz"
    # trace import reads the log with a compiled scanner (numba, for speed), but never
    # loads the compiled runtime
    loaded = _modules_after(_RUN_COMMANDS.format(commands=[["trace", "import", str(log), "-o", str(trace)]]))
    assert trace.exists()  # the import really ran
    assert loaded["goheap.heap"] is False
    commands = [
        ["--help"],
        ["run", "--help"],
        ["replay", "--help"],
        ["compare", "--help"],
        ["trace", "--help"],
        ["sweep", "--help"],
        ["diff", "--help"],
        ["sizeclasses"],
        ["trace", "info", str(trace)],
        ["run", "--gogc", "lots", "binarytrees"],  # argument errors
        ["run", "nosuchworkload"],
        ["run", "binarytrees", "deep"],
        ["run", "gcbench", "1"],
        ["run", "--policy", "nosuchpolicy", "binarytrees"],
        ["nosuchcommand"],
    ]
    loaded = _modules_after(_RUN_COMMANDS.format(commands=commands))
    assert loaded == {"numba": False, "llvmlite": False, "goheap.heap": False}


def test_replay_modes_spelled_out_for_the_command_line_are_the_replays() -> None:
    from goheap.trace.replay import MODES

    assert REPLAY_MODES == MODES
    assert callable(replay_module_function)  # goheap.trace.replay is the function, not the module
