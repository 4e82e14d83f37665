"""Running a file-type plugin on committed bytes. The bytes are the record: whatever the
plugin does (errors, exceptions), the file is stored and the problems are reported."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from jp_primary.backends.base import StorageBackend
from jp_primary.plugins.base import ExtractContext, Extraction, ExtractionProblem
from jp_primary.plugins.registry import PluginRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileIdentity:
    jobid: str
    job_key: str
    file_class: str
    name: str


@dataclass
class ExtractionOutcome:
    extraction: Extraction = field(default_factory=Extraction)
    plugin: str | None = None


def origin_detail(file_class: str, name: str) -> str:
    return f"{file_class} {name}" if name else file_class


def extract_sync(
    plugins: PluginRegistry,
    backend: StorageBackend,
    key: str,
    file: FileIdentity,
    committed_at: datetime,
) -> ExtractionOutcome:
    """Blocking: run in a worker thread."""
    plugin = plugins.plugin_for(file.file_class)
    if plugin is None:
        return ExtractionOutcome()
    context = ExtractContext(file.jobid, file.job_key, file.file_class, file.name, committed_at)
    try:
        with backend.local_copy(key) as path:
            extraction = plugin.extract(path, context)
    except Exception as exc:  # a plugin bug must never lose the file
        log.exception("plugin %s failed on %s/%s", plugin.name, file.job_key, file.file_class)
        extraction = Extraction(errors=[ExtractionProblem(f"plugin {plugin.name} failed: {exc}")])
    return ExtractionOutcome(extraction, plugin.name)
