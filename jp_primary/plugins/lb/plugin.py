"""The L&B dump plugin: a committed ``lb`` file (one job's L&B events) to JP attributes.

The file is read line by line, parsed leniently, restricted to one job, sorted and replayed
through the gLite state machine; the attribute values follow the original L&B plugin (see
docs/lb-plugin.md). Problems are reported next to the values, never instead of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from jp_primary.attributes.names import JP_PRIMARY, LB_ATTRIBUTES, LB_JDL, LB_TAG
from jp_primary.plugins.base import ExtractContext, Extraction, ExtractionProblem
from jp_primary.plugins.lb.derive import ClassAdParser, derive_attributes
from jp_primary.plugins.lb.dump import MAX_LINE_BYTES, parse_dump, select_job
from jp_primary.plugins.lb.record import job_record
from jp_primary.plugins.lb.statemachine import Replay, replay
from jp_primary.plugins.lines import bounded_lines


def _classad_parser() -> ClassAdParser | None:
    try:
        from jp_primary.plugins.classads import classad_values
    except ImportError:  # the ClassAd bindings are optional at run time
        return None
    return classad_values


def _namespaced_tags(result: Replay) -> list[tuple[str, str]]:
    """UserTag events whose name holds ':' become JP user tags at commit (original §5.3)."""
    return [
        (event.get("name") or "", event.get("value") or "")
        for event in result.events
        if event.type == "UserTag" and ":" in (event.get("name") or "")
    ]


class LBPlugin:
    name: ClassVar[str] = "lb"
    classes: ClassVar[tuple[str, ...]] = ("lb",)
    aliases: ClassVar[dict[str, str]] = {"urn:org.glite.jp.primary:lb": "lb"}
    namespaces: ClassVar[tuple[str, ...]] = (LB_ATTRIBUTES, LB_JDL, LB_TAG, JP_PRIMARY)
    # The types of what derive.py writes (queries and feeds compare through them); the rest
    # (JDL texts, hosts, reasons, jobids, tags) are strings.
    attribute_types: ClassVar[dict[str, str]] = {
        "lb:status": "lb_state",
        "lb:finalStatus": "lb_state",
        "lb:doneCode": "lb_done_code",
        "lb:finalDoneStatus": "lb_done_code",
        "lb:LRMSDoneStatus": "lb_done_code",
        "lb:exitCode": "integer",
        "lb:cpuTime": "integer",
        "lb:CPUTime": "integer",
        "lb:childrenNum": "integer",
        "lb:nsubjobs": "integer",
        "lb:resubmitted": "boolean",
        "lb:retryCount": "boolean",  # the original wrote the resubmitted flag under this name too
        "lb:cancelling": "boolean",
        "lb:payloadRunning": "boolean",
        "lb:suspended": "boolean",
        "lb:removeFromProxy": "boolean",
        "lb:stateEnterTime": "timestamp",
        "lb:lastUpdateTime": "timestamp",
        "lb:finalStatusDate": "timestamp",
        "lb:stateEnterTimes": "xml",  # <item name="State">timestamp</item> per state
        "lb:possibleDestinations": "xml",
        "lb:possibleCeNodes": "xml",
        "lb:userTags": "xml",
        "lb:fullStatusHistory": "xml",
        "lb:lastStatusHistory": "xml",
        "lb:children": "xml",
        "lb:subjobs": "xml",
        "lb:childrenHist": "xml",
    }

    def extract(self, path: Path, context: ExtractContext) -> Extraction:
        """The job's values, its namespaced user tags and its JobRecord, from one replay."""
        result, problems, omitted = self._replay(path, context.jobid)
        if result is None:
            return Extraction([], problems, errors_omitted=omitted)
        values, more = derive_attributes(result, _classad_parser())
        record = job_record(result, values, context.jobid)
        return Extraction(values, problems + more, _namespaced_tags(result), omitted, record)

    def job_record(self, path: Path, jobid: str) -> str:
        """The JobRecord XML of the job in ``path`` (``lb-job-record.xsd``)."""
        result, problems = self.replay_file(path, jobid)
        if result is None:
            detail = "; ".join(p.message for p in problems[:5]) or "no events"
            raise ValueError(f"no job record: {detail}")
        values, _ = derive_attributes(result, _classad_parser())
        return job_record(result, values, jobid)

    def replay_file(
        self, path: Path, jobid: str | None
    ) -> tuple[Replay | None, list[ExtractionProblem]]:
        result, problems, _ = self._replay(path, jobid)
        return result, problems

    def _replay(
        self, path: Path, jobid: str | None
    ) -> tuple[Replay | None, list[ExtractionProblem], int]:
        with path.open("rb") as stream:
            parsed = parse_dump(bounded_lines(stream, MAX_LINE_BYTES))
        events, problems = select_job(parsed.events, jobid)
        problems = parsed.problems + problems
        if not events:
            if not parsed.events:
                # First: the verdict must survive when only the first problems are kept.
                problems.insert(0, ExtractionProblem("the file holds no L&B event"))
            return None, problems, parsed.problems_omitted
        result = replay(events)
        problems += [ExtractionProblem(message, line) for message, line in result.problems]
        return result, problems, parsed.problems_omitted
