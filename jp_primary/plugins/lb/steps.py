"""What the replay and its transitions share: the verdicts on an event, the ``Step`` being
applied, the ``Machine`` a transition works on, and ``BadEvent``.

This module imports neither the state machine nor the transitions, so both import it and not
each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from jp_primary.plugins.lb.events import Event
from jp_primary.plugins.lb.status import Bookkeeping, JobStatus, State

# Verdicts on an event: usable for the major state, late (data only), or ignored.
OK, LATE, IGNORE = "ok", "late", "ignore"
# Finer verdicts about resubmission branches.
NONE, TOOOLD, BADBRANCH, GOODBRANCH = "none", "tooold", "badbranch", "goodbranch"
# The verdict recorded per event: ``res`` alone, or ``res/fine``.
VERDICTS = {
    (res, fine): res if fine == NONE else f"{res}/{fine}"
    for res in (OK, LATE, IGNORE)
    for fine in (NONE, TOOOLD, BADBRANCH, GOODBRANCH)
}


class BadEvent(Exception):
    """An event the state machine cannot interpret (unknown source or enum value).

    As the original's ``goto bad_event``: what the transition changed before raising stays, the
    common bookkeeping after a transition (times, sequence codes) is skipped. ``partly_applied``
    says that the transition did change something first.
    """

    def __init__(self, message: str, *, partly_applied: bool = False) -> None:
        super().__init__(message)
        self.partly_applied = partly_applied


@dataclass(slots=True)
class Step:
    """The judgement of one event while it is being applied."""

    event: Event
    old_state: State
    res: str = OK
    fine: str = NONE
    lm_favour_lrms: bool = False
    keep_last_seq: bool = False

    @property
    def usable(self) -> bool:
        return self.res == OK

    @property
    def usable_branch(self) -> bool:
        return self.fine not in (TOOOLD, BADBRANCH)


class Machine(Protocol):
    """What a transition reads and changes: the status, the bookkeeping and the problems."""

    status: JobStatus
    book: Bookkeeping
    problems: list[tuple[str, int | None]]
