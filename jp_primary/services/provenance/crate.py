"""A job as a Process Run Crate (Workflow Run RO-Crate profiles 0.6), zipped as it streams.

The metadata is made with the ``rocrate`` package: one ``CreateAction`` for the job (instrument =
its JDL, agent = its owner, start and end times, ``actionStatus`` Completed or Failed, ``error``
the failure reason), ``object`` the input files and ``result`` the outputs, and every stored file
as a ``File`` with its sha256 and size. The zip is written entry by entry into a small buffer
that is handed on after every chunk, so a crate of gigabytes of sandboxes is served in constant
memory; file bytes are stored uncompressed (sandboxes are compressed archives already).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from rocrate.model.contextentity import ContextEntity
from rocrate.model.person import Person
from rocrate.rocrate import ROCrate

from jp_primary.attributes.names import LB_ATTRIBUTES
from jp_primary.services.files import FileView
from jp_primary.services.provenance.outcome import INPUT_CLASSES, OUTPUT_CLASSES, run_of
from jp_primary.services.provenance.snapshot import JobSnapshot

PROCESS_PROFILE = "https://w3id.org/ro/wfrun/process/0.6"
METADATA = "ro-crate-metadata.json"
COMPLETED = "http://schema.org/CompletedActionStatus"
FAILED = "http://schema.org/FailedActionStatus"
_JDL_FROM_LB = "job.jdl"  # the JDL L&B recorded, when no JDL file is stored


@dataclass(frozen=True)
class CrateEntry:
    path: str  # inside the zip
    view: FileView | None  # a stored file, or None for generated text
    text: bytes = b""


def crate_path(view: FileView) -> str:
    """Where a stored file goes in the crate: never outside it, whatever its name."""
    name = quote(view.file.name, safe="") if view.file.name else view.file.file_class
    return f"files/{view.file.file_class}/{name}"


def _download(base_url: str, key: str, view: FileView) -> str:
    url = f"{base_url}/v1/jobs/{key}/files/{view.file.file_class}"
    return url + (f"?name={quote(view.file.name, safe='')}" if view.file.name else "")


def build(
    snapshot: JobSnapshot, base_url: str, links: bool
) -> tuple[dict[str, Any], list[CrateEntry]]:
    """The crate's metadata and what goes into the zip besides it."""
    job = snapshot.job
    run = run_of(snapshot)
    crate = ROCrate()
    crate.name = f"Grid job {job.jobid}"
    crate.description = f"The provenance of the grid job {job.jobid}, as stored by jp_primary"
    crate.license = "https://spdx.org/licenses/CC0-1.0"
    profile = crate.add(
        ContextEntity(
            crate,
            PROCESS_PROFILE,
            {"@type": "CreativeWork", "name": "Process Run Crate", "version": "0.6"},
        )
    )
    crate.root_dataset["conformsTo"] = [profile]
    entries: list[CrateEntry] = []
    entities: dict[int, Any] = {}
    for view in snapshot.files:
        stored = view.file
        props: dict[str, Any] = {
            "name": stored.name or stored.file_class,
            "sha256": stored.sha256,
            "contentSize": str(stored.size),
            "encodingFormat": stored.content_type or "application/octet-stream",
            "additionalType": stored.file_class,
            "dateCreated": stored.committed_at.isoformat(),
        }
        if stored.file_class == "jdl":  # the job description: the run's instrument
            props |= {"@type": ["File", "SoftwareSourceCode"], "programmingLanguage": "JDL"}
        if links:
            entity = crate.add_file(_download(base_url, job.key, view), properties=props)
        else:
            path = crate_path(view)
            entity = crate.add_file(None, dest_path=path, properties=props)
            entries.append(CrateEntry(path, view))
        entities[stored.id] = entity
    instrument = _instrument(crate, snapshot, entities, entries)
    owner = crate.add(Person(crate, "#owner", {"name": job.owner, "identifier": job.owner}))
    action_props: dict[str, Any] = {
        "name": f"Run of grid job {job.jobid}",
        "identifier": job.jobid,
        "agent": owner,
    }
    if run.start:
        action_props["startTime"] = run.start.isoformat()
    if run.end:
        action_props["endTime"] = run.end.isoformat()
    if run.succeeded is not None:
        action_props["actionStatus"] = COMPLETED if run.succeeded else FAILED
    if run.error:
        action_props["error"] = run.error
    inputs = [entities[v.file.id] for v in snapshot.files if v.file.file_class in INPUT_CLASSES]
    outputs = [entities[v.file.id] for v in snapshot.files if v.file.file_class in OUTPUT_CLASSES]
    action = crate.add_action(
        instrument, identifier="#run", object=inputs, result=outputs, properties=action_props
    )
    crate.root_dataset["mentions"] = [action]  # the profile: the root entity mentions the run
    return crate.metadata.generate(), entries


def _instrument(
    crate: ROCrate, snapshot: JobSnapshot, entities: dict[int, Any], entries: list[CrateEntry]
) -> Any:
    """The job description that was run: the stored JDL file, else the JDL L&B recorded."""
    for view in snapshot.files:
        if view.file.file_class == "jdl":
            return entities[view.file.id]
    jdl = snapshot.first(f"{LB_ATTRIBUTES}:JDL")
    if jdl is not None:
        data = jdl.encode()
        entries.append(CrateEntry(_JDL_FROM_LB, None, data))
        return crate.add_file(
            None,
            dest_path=_JDL_FROM_LB,
            properties={
                "@type": ["File", "SoftwareSourceCode"],
                "name": "The job's JDL as L&B recorded it",
                "programmingLanguage": "JDL",
                "encodingFormat": "text/plain",
                "contentSize": str(len(data)),
            },
        )
    return crate.add(
        ContextEntity(
            crate,
            "#job-description",
            {"@type": "SoftwareApplication", "name": "The job's description (not stored)"},
        )
    )


class _Sink(io.RawIOBase):
    """A write-only, non-seekable file: zipfile then writes data descriptors, never seeks."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._written += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


async def stream_zip(
    metadata: dict[str, Any],
    entries: list[CrateEntry],
    read: Callable[[FileView], AsyncIterator[bytes]],
    when: datetime,
) -> AsyncIterator[bytes]:
    sink = _Sink()
    stamp = when.timetuple()[:6]
    with zipfile.ZipFile(sink, "w") as archive:
        info = zipfile.ZipInfo(METADATA, stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, json.dumps(metadata, indent=2))
        yield sink.take()
        for entry in entries:
            info = zipfile.ZipInfo(entry.path, stamp)
            info.compress_type = zipfile.ZIP_STORED
            if entry.view is None:
                archive.writestr(info, entry.text)
                yield sink.take()
                continue
            info.file_size = entry.view.file.size
            with archive.open(info, "w", force_zip64=entry.view.file.size >= 2**31) as out:
                async for chunk in read(entry.view):
                    out.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
