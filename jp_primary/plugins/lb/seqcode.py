"""gLite sequence codes: ``UI=%06d:NS=%010d:WM=%06d:BH=%010d:JSS=%06d:LM=%06d:LRMS=%06d:APP=%06d
:LBS=%06d``.

A code is kept as a tuple of the nine counters, so Python's tuple ordering is exactly the
original lexicographic comparison from UI to LBS. Older codes without ``LBS`` count it as 0.
"""

from __future__ import annotations

import re

COMPONENTS = ("UI", "NS", "WM", "BH", "JSS", "LM", "LRMS", "APP", "LBS")
UI, NS, WM, BH, JSS, LM, LRMS, APP, LBS = range(9)
_WIDTHS = (6, 10, 6, 10, 6, 6, 6, 6, 6)
_GLITE = re.compile(":".join(f"{name}=([0-9]+)" for name in COMPONENTS[:-1]) + "(?::LBS=([0-9]+))?")

SeqCode = tuple[int, ...]


class SeqCodeError(ValueError):
    """Text that is not a gLite sequence code."""


def parse_seqcode(text: str) -> SeqCode:
    """Parse a gLite sequence code (with or without ``LBS``) into its nine counters."""
    match = _GLITE.fullmatch(text.strip())
    if match is None:
        raise SeqCodeError(f"not a gLite sequence code: {text[:120]!r}")
    return tuple(map(int, match.groups("0")))


def format_seqcode(code: SeqCode, *, with_lbs: bool = True) -> str:
    """Render ``code`` in the canonical zero-padded form (old form without LBS on request)."""
    fields = [
        f"{name}={value:0{width}d}"
        for name, value, width in zip(COMPONENTS, code, _WIDTHS, strict=True)
    ]
    return ":".join(fields if with_lbs else fields[:-1])


def with_component(code: SeqCode, index: int, value: int) -> SeqCode:
    """``code`` with one counter replaced (the "lm_favour_lrms" rule sets LM to 0)."""
    return code[:index] + (value,) + code[index + 1 :]


def same_branch(a: SeqCode, b: SeqCode) -> bool:
    """The WM counter identifies the resubmission branch."""
    return a[WM] == b[WM]


def before_deep_resubmission(code: SeqCode, boundary: SeqCode) -> bool:
    return code[WM] < boundary[WM]


def entered_wm_again(code: SeqCode, last: SeqCode) -> bool:
    """A new NS or UI counter means the job came through the front door again."""
    return code[NS] > last[NS] or code[UI] > last[UI]
