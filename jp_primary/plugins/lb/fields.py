"""Reading the values of event fields the transitions interpret: numbers, Done status codes,
the worker node's sequence code and the CollectionState histogram.
"""

from __future__ import annotations

from jp_primary.plugins.lb.seqcode import SeqCode, SeqCodeError, parse_seqcode
from jp_primary.plugins.lb.status import DoneCode, State


def parsable_seqcode(text: str | None) -> SeqCode | None:
    if text is None:
        return None
    try:
        return parse_seqcode(text)
    except SeqCodeError:
        return None


def done_code_of(status_code: str | None) -> DoneCode | None:
    """The done code of a Done's status code: None for KILLED and for codes outside the enum.

    The original read an unknown code as UNDEFINED and handled it as it handled KILLED.
    """
    return _DONE_CODES.get((status_code or "").upper())


_DONE_CODES = {"OK": DoneCode.OK, "FAILED": DoneCode.FAILED, "CANCELLED": DoneCode.CANCELLED}


def integer(text: str | None, default: int | None) -> int | None:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def exit_code(text: str | None) -> int:
    value = integer(text, -1)
    return -1 if value is None else value


def histogram(text: str | None) -> dict[State, int]:
    """``"Submitted=0, Waiting=0, ..."`` (the CollectionState histogram) to counts."""
    counts: dict[State, int] = {}
    for item in (text or "").split(","):
        name, _, count = item.strip().partition("=")
        state = State.from_label(name)
        if state is not None and count.strip().isdigit():
            counts[state] = int(count)
    return counts
