"""The runtime's layers call only downward: a lower module never imports a higher one.

Order (architecture.md): sysmem < fixalloc, bitmap, raceshadow, pacer < mheap < mcentral < mcache,
race < malloc < gc < api (the compiled API) < entry (the shell's entry points), the race
shell < goheap.nb's checked twins (_jit_checked) < goheap.nb and the shell's leaves
(_shell: args, lifetime) < the shell's parts (config, roots, scope) < state (what the mixins
share) < the mixins (profiling, finalizers, scavenger) < heap.py, which assembles them into
Heap. Modules of plain definitions (constants, layout, the jit decorator, errors, the
size-class computation, stats, trace formatting) sit below them all and import nothing
above themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import goheap

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)

PACKAGE = Path(goheap.__file__).resolve().parent

# rank of each module (dotted, relative to the goheap package); leaves are rank 0
RANKS = {
    "errors": 0,
    "_runtime.constants": 0,
    "_runtime.layout": 0,
    "_runtime._jit": 0,
    "_runtime.sizeclasses": 0,
    "_runtime.gosizeclasses": 0,
    "_runtime.stats": 0,
    "_runtime.gctrace": 0,
    "_runtime.goenv": 0,
    "_runtime.handle": 0,
    "_runtime.units": 0,
    "_runtime.sysmem": 1,
    "_runtime.fixalloc": 2,
    "_runtime.bitmap": 2,
    "_runtime.raceshadow": 2,
    "_runtime.mprof": 2,
    "_runtime.pacer": 2,
    "_runtime.mheap": 3,
    "_runtime.mcentral": 4,
    "_runtime.mcache": 5,
    "_runtime.race": 5,
    "_runtime.malloc": 6,
    "_runtime.mallocinit": 6,
    "_runtime.check": 6,
    "_runtime.gc": 7,
    "_runtime.gc.collect": 7,
    "_runtime.gc.mark": 7,
    "_runtime.gc.sweep": 7,
    "_runtime.gc.finalizers": 7,
    "_runtime.gc.gchelper": 7,
    "_runtime.gc.parfor": 7,
    "_runtime.gc.rawmem": 7,
    "_runtime.gc.roots": 7,
    "_runtime.api": 8,
    "_runtime.entry": 9,
    "_runtime.prepare": 9,
    "_jit_api": 9,
    "race": 9,
    "_jit_checked": 10,
    "nb": 11,
    "_shell": 0,  # the package itself: a docstring
    "_shell.args": 11,
    "_shell.config": 12,
    "_shell.lifetime": 11,
    "_shell.roots": 12,
    "_shell.scope": 12,
    "_shell.state": 13,
    "_shell.profiling": 14,
    "_shell.finalizers": 14,
    "_shell.scavenger": 14,
    "heap": 15,
}
SAME_RANK_ALLOWED = {7}  # the collector's modules use each other


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """goheap modules imported anywhere in the file (including inside functions)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("goheap"):
                target = node.module[len("goheap") :].lstrip(".")
            else:
                continue
            candidates = [target] + [f"{target}.{a.name}" if target else a.name for a in node.names]
            out.update(c for c in candidates if c in RANKS)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("goheap."):
                    out.add(a.name[len("goheap.") :])
    return out


RUNTIME_FILES = sorted(p for p in PACKAGE.rglob("*.py") if _module_name(p) in RANKS)


def test_every_runtime_and_shell_module_has_a_rank() -> None:
    runtime = {_module_name(p) for d in ("_runtime", "_shell") for p in (PACKAGE / d).rglob("*.py")} - {"_runtime"}
    assert runtime <= set(RANKS), f"unranked: {sorted(runtime - set(RANKS))}"


@pytest.mark.parametrize("path", RUNTIME_FILES, ids=_module_name)
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    name = _module_name(path)
    rank = RANKS[name]
    for target in sorted(_imports(path, name)):
        if target == name:
            continue
        other = RANKS[target]
        ok = other < rank or (other == rank and rank in SAME_RANK_ALLOWED) or other == 0 == rank
        assert ok, f"{name} (layer {rank}) imports {target} (layer {other})"


def test_the_checker_sees_imports() -> None:
    # a known downward import, so that the rule above cannot pass by finding nothing
    mcentral = PACKAGE / "_runtime" / "mcentral.py"
    assert {"_runtime.mheap", "_runtime.bitmap", "_runtime.layout"} <= _imports(mcentral, "_runtime.mcentral")
    heap = PACKAGE / "heap.py"
    assert {"_runtime.entry", "errors"} <= _imports(heap, "heap")
