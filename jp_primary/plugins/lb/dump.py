"""From the lines of an L&B dump file to events, with problems reported per line.

A dump is read leniently: a line that cannot be parsed is reported (with its number) and
skipped, and the rest of the file still counts. Memory stays bounded whatever the file holds:
a line longer than ``MAX_LINE_BYTES`` is skipped (``None`` from ``bounded_lines``), at most
``MAX_PROBLEMS`` problems are kept (the rest are counted), events stop being read once they
reach ``MAX_EVENTS`` or ``MAX_EVENT_BYTES``, and a file whose first ``MAX_PROBLEMS`` lines hold
no event at all is not read further.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from jp_primary.plugins.base import ExtractionProblem
from jp_primary.plugins.lb.events import Event, event_from_fields
from jp_primary.plugins.lb.jobids import unique_part
from jp_primary.plugins.lb.ulm import ULMError, parse_line

# A real event line is at most a few tens of kilobytes; a RegJob event may carry a big JDL.
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_EVENTS = 200_000
MAX_EVENT_BYTES = 256 * 1024 * 1024
MAX_PROBLEMS = 1000


@dataclass
class ParsedDump:
    events: list[Event] = field(default_factory=list)
    problems: list[ExtractionProblem] = field(default_factory=list)
    problems_omitted: int = 0  # problems found beyond the MAX_PROBLEMS kept

    def problem(self, message: str, line: int | None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(ExtractionProblem(message, line))
        else:
            self.problems_omitted += 1


def decode_line(raw: bytes) -> str:
    """UTF-8, else Latin-1 (2005-era DNs); NUL bytes mean binary data, not text."""
    if b"\x00" in raw:
        raise ULMError("binary data (NUL bytes), not a ULM line")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_dump(lines: Iterable[bytes | str | None], first_line: int = 1) -> ParsedDump:
    """Parse every non-empty line; unparsable ones become problems naming their line.

    ``None`` stands for a line too long to be read (see ``plugins.lines.bounded_lines``)."""
    parsed = ParsedDump()
    held = 0
    for number, raw in enumerate(lines, start=first_line):
        if raw is None:
            parsed.problem(f"line longer than {MAX_LINE_BYTES} bytes, not read", number)
            continue
        if len(parsed.events) >= MAX_EVENTS or held >= MAX_EVENT_BYTES:
            limit = f"{MAX_EVENTS} events or {MAX_EVENT_BYTES} bytes of events"
            parsed.problem(f"the dump holds more than {limit}; the rest is not read", number)
            break
        try:
            text = decode_line(raw) if isinstance(raw, bytes) else raw
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            parsed.events.append(event_from_fields(parse_line(text, number), number))
            held += len(raw)
        except ULMError as exc:
            parsed.problem(exc.message, number)
            if not parsed.events and len(parsed.problems) >= MAX_PROBLEMS:
                # Not a dump at all (random bytes, a binary): reading on would only count.
                message = f"no L&B event in the first {MAX_PROBLEMS} lines: the rest is not read"
                parsed.problems.insert(0, ExtractionProblem(message, number))
                break
    return parsed


def select_job(
    events: list[Event], jobid: str | None
) -> tuple[list[Event], list[ExtractionProblem]]:
    """Keep the events of job ``jobid`` (of the first event's job if not given); report others.

    One problem names the first line of another job (and how many more there are), as the
    original refused such a dump with "Attempt to process different jobs".
    """
    if not events:
        return [], []
    problems: list[ExtractionProblem] = []
    wanted = unique_part(jobid) if jobid else unique_part(events[0].jobid)
    # A dump spells its jobid(s) the same way on every line: find each unique part once.
    parts = {text: unique_part(text) for text in {event.jobid for event in events}}
    kept = [event for event in events if parts[event.jobid] == wanted]
    if not kept:
        # Another job's values must not be recorded under this one.
        return [], [ExtractionProblem(f"the dump holds no event of job {jobid}", None)]
    others = [event for event in events if parts[event.jobid] != wanted]
    if others:
        more = f" (and {len(others) - 1} more line(s))" if len(others) > 1 else ""
        message = f"event of a different job {others[0].jobid}, ignored{more}"
        problems.append(ExtractionProblem(message, others[0].line))
    return kept, problems


def split_by_job(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Group the events of a multi-job (purge) dump by jobid unique part, in file order."""
    jobs: dict[str, list[Event]] = {}
    for event in events:
        jobs.setdefault(unique_part(event.jobid), []).append(event)
    return jobs
