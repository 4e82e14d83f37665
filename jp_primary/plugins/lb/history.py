"""Status history views of a replay: finalStatus and the XML fragments of §3.3.

``fullStatusHistory`` has one ``<status/>`` element per state change; ``lastStatusHistory`` is
the Submitted entry plus everything from the last Waiting on (the last submission cycle).
"""

from __future__ import annotations

from jp_primary.attributes.names import LB_ATTRIBUTES
from jp_primary.plugins.lb.status import HistoryEntry, State
from jp_primary.timefmt import micros_text

_STATE_NAMES = tuple(state.name for state in State)  # Enum.name is a slow descriptor


def final_entry(history: list[HistoryEntry]) -> HistoryEntry | None:
    """The state just before the (last) Cleared, else the last state."""
    final: HistoryEntry | None = None
    for index, entry in enumerate(history):
        if entry.state == State.CLEARED and index > 0:
            final = history[index - 1]
    if final is None and history:
        final = history[-1]
    return final


def last_cycle(history: list[HistoryEntry]) -> list[HistoryEntry]:
    """The Submitted entry (if first) plus the entries from the last Waiting on."""
    head = [history[0]] if history and history[0].state == State.SUBMITTED else []
    last_waiting = None
    for index, entry in enumerate(history):
        if entry.state == State.WAITING:
            last_waiting = index
    return head + (history[last_waiting:] if last_waiting is not None else [])


def status_element(entry: HistoryEntry, *, full: bool) -> str:
    """One ``<status .../>`` element; ``full`` adds destination (Ready..Done) and doneCode."""
    parts = [
        f'<status xmlns="{LB_ATTRIBUTES}"',
        f'name="{_STATE_NAMES[entry.state]}"',
        f'timestamp="{micros_text(entry.time_us)}"',
    ]
    if entry.reason is not None:
        parts.append(f"reason={_attr(entry.reason)}")
    if full and entry.destination is not None and State.READY <= entry.state <= State.DONE:
        parts.append(f"destination={_attr(entry.destination)}")
    if full and entry.state == State.DONE:
        code = -1 if entry.done_code is None else entry.done_code
        parts.append(f'doneCode="{code}"')
    return " ".join(parts) + "/>"


def full_history_xml(history: list[HistoryEntry]) -> str:
    return "\n".join(status_element(entry, full=True) for entry in history)


def last_history_xml(history: list[HistoryEntry]) -> str:
    return "\n".join(status_element(entry, full=False) for entry in last_cycle(history))


def _attr(value: str) -> str:
    """A double-quoted XML attribute value."""
    for char, entity in _ENTITIES:
        if char in value:
            value = value.replace(char, entity)
    return f'"{value}"'


_ENTITIES = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ('"', "&quot;"),
    ("\n", "&#10;"),
    ("\r", "&#13;"),
    ("\t", "&#9;"),
)
