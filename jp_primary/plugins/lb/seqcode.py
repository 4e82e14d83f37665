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
# What the services write (zero-padded, with LBS): matched without stripping first.
_CANONICAL = re.compile(
    ":".join(f"{name}=([0-9]{{{width}}})" for name, width in zip(COMPONENTS, _WIDTHS, strict=True))
)

SeqCode = tuple[int, ...]


class SeqCodeError(ValueError):
    """Text that is not a gLite sequence code."""


def parse_seqcode(text: str) -> SeqCode:
    """Parse a gLite sequence code (with or without ``LBS``) into its nine counters."""
    # The events of one job share the leading (UI..JSS) or the trailing (LM..LBS) counters of
    # their codes, so both halves of a canonical code are usually known already.
    head, tail = _HEADS.get(text[:_SPLIT]), _TAILS.get(text[_SPLIT:])
    if head is not None and tail is not None:
        return head + tail
    match = _CANONICAL.fullmatch(text)
    if match is not None:
        code = tuple(map(int, match.groups()))
        _remember_halves(text, code)
        return code
    match = _GLITE.fullmatch(text.strip())
    if match is None:
        raise SeqCodeError(f"not a gLite sequence code: {text[:120]!r}")
    return tuple(map(int, match.groups("0")))


# A canonical code is fixed-width: its UI..JSS half is the first 59 characters (with the colon),
# and any known head followed by any known tail is again a canonical code.
_SPLIT = len("UI=000000:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:")
_HEADS: dict[str, SeqCode] = {}
_TAILS: dict[str, SeqCode] = {}
_HALVES_KEPT = 16_384


def _remember_halves(text: str, code: SeqCode) -> None:
    for halves, key, value in (
        (_HEADS, text[:_SPLIT], code[: JSS + 1]),
        (_TAILS, text[_SPLIT:], code[JSS + 1 :]),
    ):
        if len(halves) >= _HALVES_KEPT:
            halves.clear()  # bounded; the current job's halves are learnt again
        halves[key] = value


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


# The L&B Condor job type's codes: ``TIMESTAMP=YYYYMMDDhhmmss:POS=<10 digits>:EV.CODE=<3 digits>
# :SRC=<c>``, where SRC names the Condor daemon log the event was read from (C schedd, H shadow,
# S startd, s starter, m match, N negotiator, M master, L collector, j job queue).
_CONDOR = re.compile(r"TIMESTAMP=([0-9]{14}):POS=([0-9]{1,10}):EV\.CODE=([0-9]{1,3}):SRC=(.)")
CONDOR_SOURCES = {
    "L": "Collector",
    "M": "Master",
    "m": "Match",
    "N": "Negotiator",
    "C": "Schedd",
    "H": "Shadow",
    "s": "Starter",
    "S": "Startd",
    "j": "JobQueue",
}
# Equal times from different daemon logs: the original put the match log after the starter's,
# and both after the others.
_CONDOR_RANK = {"m": 2, "s": 1}
CONDOR_SRC = 5  # index of the source character (as its code point) in a Condor code


def parse_condor_seqcode(text: str, *, registration: bool = False) -> SeqCode:
    """A Condor-type code as a tuple that sorts as the original compared them.

    ``(0 for the RegJob else 1, timestamp, source rank, log position, event code, source)``: the
    RegJob always comes first (it carries the job type), then time, then the position in the
    daemon's log (the original compared positions only within one log; across logs it ranked
    the match and starter logs last)."""
    match = _CONDOR.fullmatch(text.strip())
    if match is None:
        raise SeqCodeError(f"not a gLite or Condor sequence code: {text[:120]!r}")
    stamp, position, code, source = match.groups()
    return (
        0 if registration else 1,
        int(stamp),
        _CONDOR_RANK.get(source, 0),
        int(position),
        int(code),
        ord(source),
    )


def is_condor_seqcode(code: SeqCode) -> bool:
    return len(code) == 6
