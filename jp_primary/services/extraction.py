"""Running a file-type plugin on committed bytes. The bytes are the record: whatever the
plugin does (errors, exceptions), the file is stored and the problems are reported."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from jp_primary.backends.base import StorageBackend
from jp_primary.db.repositories import values
from jp_primary.plugins.base import DerivedValue, ExtractContext, Extraction, ExtractionProblem
from jp_primary.plugins.registry import PluginRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileIdentity:
    jobid: str
    job_key: str
    file_class: str
    name: str


def file_values(
    derived: list[DerivedValue], file_class: str, name: str, file_id: int
) -> list[values.NewValue]:
    """A file's derived values as stored: origin FILE, ``origin_detail`` naming the file unless
    the plugin named something more precise."""
    detail = f"{file_class} {name}" if name else file_class
    return [
        values.NewValue(v.name, v.value, "FILE", v.timestamp, v.origin_detail or detail, file_id)
        for v in derived
    ]


def errors_json(extraction: Extraction) -> str:
    return json.dumps([problem.as_dict() for problem in extraction.errors])


def extract_sync(
    plugins: PluginRegistry,
    backend: StorageBackend,
    key: str,
    file: FileIdentity,
    committed_at: datetime,
) -> Extraction:
    """Blocking: run in a worker thread."""
    plugin = plugins.plugin_for(file.file_class)
    if plugin is None:
        return Extraction()
    context = ExtractContext(file.jobid, file.job_key, file.file_class, file.name, committed_at)
    try:
        with backend.local_copy(key) as path:
            extraction = plugin.extract(path, context)
    except Exception as exc:  # a plugin bug must never lose the file
        log.exception("plugin %s failed on %s/%s", plugin.name, file.job_key, file.file_class)
        extraction = Extraction(errors=[ExtractionProblem(f"plugin {plugin.name} failed: {exc}")])
    return extraction
