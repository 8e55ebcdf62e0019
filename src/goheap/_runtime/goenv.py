"""How the seed reads its environment: runtime·atoi, and GOGC as runtime·gc reads it.

Pure Python (no numba), so that the command line can read GOGC without loading the runtime.
"""

from __future__ import annotations

__all__ = ["readgogc", "runtime_atoi"]


def runtime_atoi(value: str | None) -> int:
    """The runtime's atoi: leading decimal digits only, in an int32 that wraps."""
    n = 0
    for ch in value or "":
        if not "0" <= ch <= "9":
            break
        n = (n * 10 + ord(ch) - ord("0")) & 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


def readgogc(value: str | None) -> int:
    """GOGC as the seed parses it: unset or empty 100, "off" -1, else the leading decimal digits (atoi)."""
    if value is None or value == "":
        return 100
    if value == "off":
        return -1
    return runtime_atoi(value)
