"""A job as a W3C PROV document (the ``prov`` package), as OGC API - Processes Part 4 asks
``/jobs/{id}/prov`` to answer.

The job is one activity with its start and end; its stored files are entities carrying their
sha256 and class; the owner and the services that registered the job or uploaded its files are
agents. Inputs (input sandbox, JDL) are ``used``, outputs (output sandbox) ``wasGeneratedBy``
the job; every file ``wasAttributedTo`` its uploader. Each state change is a timed event: the
job generates a state entity when it enters the state and invalidates it when it leaves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from prov.constants import PROV
from prov.model import PROV_LABEL, PROV_TYPE, PROV_VALUE, Namespace, ProvDocument

from jp_primary.services.provenance.outcome import INPUT_CLASSES, OUTPUT_CLASSES, Run, run_of
from jp_primary.services.provenance.snapshot import JobSnapshot

JP_NS = "https://jp-primary.example/ns#"  # the vocabulary of the properties below


@dataclass(frozen=True)
class ProvFormat:
    name: str
    media_type: str
    serializer: str  # the prov package's format
    options: tuple[tuple[str, str], ...] = ()


FORMATS = (
    ProvFormat("PROV-JSON", "application/json", "json"),
    ProvFormat("PROV-JSON", "application/prov+json", "json"),
    ProvFormat("PROV-N", "text/provenance-notation", "provn"),
    ProvFormat("PROV-XML", "application/provenance+xml", "xml"),
    ProvFormat("PROV-XML", "application/xml", "xml"),
    ProvFormat("PROV-O", "text/turtle", "rdf", (("rdf_format", "turtle"),)),
    ProvFormat("PROV-O", "application/ld+json", "rdf", (("rdf_format", "json-ld"),)),
)


def agent_id(subject: str) -> str:
    """Subjects (DNs, issuer#sub) are not QName-safe: name the agent by a digest, label it."""
    return "agent-" + hashlib.sha256(subject.encode()).hexdigest()[:20]


def document(snapshot: JobSnapshot, base_url: str) -> ProvDocument:
    job = snapshot.job
    job_url = f"{base_url}/v1/jobs/{job.key}"
    doc = ProvDocument()
    jp = doc.add_namespace("jp", JP_NS)
    doc.add_namespace("job", f"{job_url}/")
    doc.add_namespace("agents", "urn:jp-primary:agent:")  # subjects are not URLs
    run = run_of(snapshot)
    described: dict[Any, Any] = {
        PROV_LABEL: job.jobid,
        PROV_TYPE: jp["GridJob"],
        "jp:jobid": job.jobid,
        "jp:key": job.key,
        "jp:registeredAt": job.registered_at,
        **_outcome(run),
    }
    activity = doc.activity("job:run", run.start or job.registered_at, run.end, described)
    agents: dict[str, Any] = {}

    def agent(subject: str, kind: str) -> Any:  # kind: prov:Person or prov:SoftwareAgent
        if subject not in agents:
            agents[subject] = doc.agent(
                f"agents:{agent_id(subject)}",
                {PROV_LABEL: subject, PROV_TYPE: PROV[kind], "jp:subject": subject},
            )
        return agents[subject]

    owner = agent(job.owner, "Person")
    doc.wasAssociatedWith(activity, owner, None, None, {"prov:role": jp["owner"]})
    if job.registered_by != job.owner:
        registrar = agent(job.registered_by, "SoftwareAgent")
        doc.actedOnBehalfOf(registrar, owner, activity)
    for view in snapshot.files:
        stored = view.file
        local = f"files/{stored.file_class}" + (
            f"/{quote(stored.name, safe='')}" if stored.name else ""
        )
        entity = doc.entity(
            f"job:{local}",
            {
                PROV_TYPE: jp["StoredFile"],
                PROV_LABEL: stored.name or stored.file_class,
                "jp:class": stored.file_class,
                "jp:name": stored.name,
                "jp:sha256": stored.sha256,
                "jp:size": stored.size,
                "prov:location": _download(job_url, stored.file_class, stored.name),
            },
        )
        uploader_kind = "Person" if view.uploader == job.owner else "SoftwareAgent"
        doc.wasAttributedTo(entity, agent(view.uploader, uploader_kind))
        if stored.file_class in INPUT_CLASSES:
            doc.used(activity, entity, run.start)
        elif stored.file_class in OUTPUT_CLASSES:
            doc.wasGeneratedBy(entity, activity, run.end)
        else:
            doc.wasInfluencedBy(entity, activity)
    _states(doc, jp, activity, run)
    return doc


def _outcome(run: Run) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if run.final_state:
        found["jp:finalState"] = run.final_state
    if run.succeeded is not None:
        found["jp:actionStatus"] = "Completed" if run.succeeded else "Failed"
    if run.error:
        found["jp:error"] = run.error
    if run.where:
        found["jp:ranAt"] = run.where
    if run.timeline.inconsistency:
        found["jp:replayInconsistency"] = run.timeline.inconsistency
    return found


def _states(doc: ProvDocument, jp: Namespace, activity: Any, run: Run) -> None:
    previous = None
    for index, step in enumerate(run.timeline.steps, start=1):
        if step.at is None:
            continue
        attrs: dict[Any, Any] = {
            PROV_TYPE: jp["JobState"],
            PROV_VALUE: step.state,
            PROV_LABEL: step.state,
        }
        if step.reason:
            attrs["jp:reason"] = step.reason
        if step.where:
            attrs["jp:destination"] = step.where
        state = doc.entity(f"job:state/{index}", attrs)
        doc.wasGeneratedBy(state, activity, step.at)
        if previous is not None:
            doc.wasInvalidatedBy(previous, activity, step.at)
        previous = state


def _download(job_url: str, file_class: str, name: str) -> str:
    return f"{job_url}/files/{file_class}" + (f"?name={quote(name, safe='')}" if name else "")


def serialize(doc: ProvDocument, fmt: ProvFormat) -> str:
    text = doc.serialize(format=fmt.serializer, **dict(fmt.options))
    return text or ""


def when(at: datetime | None) -> str | None:
    return at.isoformat() if at else None
