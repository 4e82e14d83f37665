"""The JRA2 statistics JobRecord (``lb-job-record.xsd``) of one replayed job.

``<jr:jobRecord jobid="...">`` holds v1 L&B attributes as elements of the L&B Attributes
namespace, in the schema's sequence order. The schema calls the record "best effort only"; the
values here are the ones the plugin derives, with the enumerations the schema declares
(upper-case state names, ``OK``/``FAIL``/``CANCEL``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from jp_primary.attributes.names import LB_ATTRIBUTES
from jp_primary.plugins.base import DerivedValue
from jp_primary.plugins.lb.history import final_entry, last_cycle
from jp_primary.plugins.lb.jobids import subjob_ids
from jp_primary.plugins.lb.statemachine import Replay
from jp_primary.plugins.lb.status import HistoryEntry
from jp_primary.timefmt import micros_text

JOB_RECORD_NS = "http://egee.cesnet.cz/en/Schema/LB/JobRecord"
_SCALARS_BEFORE_FINAL = ("VO", "eNodes", "eProc", "RB", "CE", "host", "UIHost", "CPUTime")
_DONE_TYPE = {"OK": "OK", "FAILED": "FAIL", "CANCELLED": "CANCEL", "KILLED": "FAIL"}


def job_record(result: Replay, values: list[DerivedValue], jobid: str) -> str:
    """The JobRecord XML document (UTF-8 text with declaration)."""
    ET.register_namespace("jr", JOB_RECORD_NS)
    ET.register_namespace("a", LB_ATTRIBUTES)
    attrs = {v.name[len(LB_ATTRIBUTES) + 1 :]: v.value for v in values if _is_lb(v.name)}
    status = result.status
    root = ET.Element(f"{{{JOB_RECORD_NS}}}jobRecord", {"jobid": jobid})
    _text(root, "jobId", status.jobid or jobid)
    _text(root, "user", status.owner or "")
    _text(root, "parent", status.parent_job)
    for name in _SCALARS_BEFORE_FINAL:
        value = attrs.get(name)
        if name == "RB":
            value = value or ""
        _text(root, name, value)
    final = final_entry(result.history)
    final_state = final.state if final is not None else status.state
    _text(root, "finalStatus", final_state.name)
    final_time = final.time_us if final is not None else status.last_update_time_us or 0
    _text(root, "finalStatusDate", micros_text(final_time))
    _text(root, "finalStatusReason", attrs.get("finalStatusReason"))
    lrms = attrs.get("LRMSDoneStatus")
    _text(root, "LRMSDoneStatus", _DONE_TYPE.get(lrms) if lrms else None)
    _text(root, "LRMSStatusReason", attrs.get("LRMSStatusReason"))
    _text(root, "retryCount", "1" if status.resubmitted else "0")
    _text(root, "jobType", status.jobtype or "UNKNOWN")
    if status.children_num > 0 and status.jobid:
        _text(root, "nsubjobs", str(status.children_num))
        subjobs = ET.SubElement(root, _a("subjobs"))
        for child in subjob_ids(status.jobid, status.children_num, status.seed):
            ET.SubElement(subjobs, _a("jobId")).text = child
    _history(root, "lastStatusHistory", last_cycle(result.history))
    _history(root, "fullStatusHistory", result.history)
    _text(root, "JDL", status.jdl)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _is_lb(name: str) -> bool:
    return name.startswith(LB_ATTRIBUTES + ":") and ":" not in name[len(LB_ATTRIBUTES) + 1 :]


def _a(local: str) -> str:
    return f"{{{LB_ATTRIBUTES}}}{local}"


def _text(parent: ET.Element, local: str, value: str | None) -> None:
    if value is not None:
        ET.SubElement(parent, _a(local)).text = value


def _history(parent: ET.Element, local: str, entries: list[HistoryEntry]) -> None:
    sequence = ET.SubElement(parent, _a(local))
    for entry in entries:
        attributes = {"name": entry.state.name, "timestamp": micros_text(entry.time_us)}
        if entry.reason is not None:
            attributes["reason"] = entry.reason
        ET.SubElement(sequence, _a("status"), attributes)
