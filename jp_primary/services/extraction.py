"""Running a file-type plugin on committed bytes. The bytes are the record: whatever the
plugin does (errors, exceptions, values no database can hold), the file is stored and the
problems are reported.

``storable`` is the one place where what a plugin derived is made fit for storage, so no plugin
has to know the schema: names and values with characters no database stores get U+FFFD, an
over-long value is cut, a value or user tag with an over-long name is skipped (a cut name would
be another attribute), values past the per-file cap are dropped, and only the first problems are
kept (their texts cut) while all are counted. Each change is itself reported as a problem.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import Counter
from sqlmodel import Session

from jp_primary.attributes.names import tag_attribute
from jp_primary.backends.base import StorageBackend
from jp_primary.db.repositories import records, values
from jp_primary.db.repositories.files import StoredFile
from jp_primary.plugins.base import (
    DerivedValue,
    ExtractContext,
    Extraction,
    ExtractionProblem,
    Source,
    wants_stream,
)
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.text import (
    ATTRIBUTE_NAME_MAX,
    DERIVED_VALUE_MAX,
    NAME_MAX,
    PROBLEM_TEXT_MAX,
    SUBJECT_MAX,
    storable_characters,
    text_problem,
)

log = logging.getLogger(__name__)

# How much of the stored files the plugins made the store serve (a tar listing on S3 should be
# a small fraction of the archive; a file-name plugin on a remote store downloads all of it).
PLUGIN_FETCHED = Counter(
    "jp_plugin_fetched_bytes_total", "Bytes plugins read from a remote store", ["file_class"]
)

_SHOWN = 80  # characters of an offending name quoted in a problem


@dataclass(frozen=True)
class ExtractionLimits:
    max_problems: int = 100
    max_values: int = 200_000


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


def error_dicts(extraction: Extraction) -> list[dict[str, object]]:
    """The problems kept, as stored with the file and shown to clients."""
    return [problem.as_dict() for problem in extraction.errors]


def error_count(extraction: Extraction) -> int:
    """Every problem found, kept or not."""
    return len(extraction.errors) + extraction.errors_omitted


def extract_sync(
    plugins: PluginRegistry,
    backend: StorageBackend,
    key: str,
    file: FileIdentity,
    committed_at: datetime,
    limits: ExtractionLimits | None = None,
) -> Extraction:
    """Blocking: run in a worker thread. The result is storable (see ``storable``)."""
    plugin = plugins.plugin_for(file.file_class)
    if plugin is None:
        return Extraction()
    context = ExtractContext(file.jobid, file.job_key, file.file_class, file.name, committed_at)
    try:
        with _source_for(plugin, backend, key) as source:
            extraction = plugin.extract(source, context)
            _count_fetched(source, backend, file.file_class)
    except Exception as exc:  # a plugin bug must never lose the file
        log.exception("plugin %s failed on %s/%s", plugin.name, file.job_key, file.file_class)
        extraction = Extraction(errors=[ExtractionProblem(f"plugin {plugin.name} failed: {exc}")])
    return storable(extraction, limits or ExtractionLimits())


def _source_for(
    plugin: object, backend: StorageBackend, key: str
) -> AbstractContextManager[Source]:
    """What the plugin reads: a stream that fetches only what is read, or (for plugins that
    need a file name) a local file, a full download on remote stores."""
    if not wants_stream(plugin):
        return backend.local_copy(key)
    opener = getattr(backend, "open_reader", None)  # third-party backends may predate it
    return opener(key) if opener is not None else _opened_copy(backend, key)


def _count_fetched(source: Source, backend: StorageBackend, file_class: str) -> None:
    """Bytes the plugin had the store serve: what a ranged reader fetched, or the whole object
    when a remote store's file was downloaded for a plugin that needs a file name."""
    fetched = getattr(source, "fetched", None)
    if fetched is None and backend.remote and isinstance(source, Path):
        fetched = source.stat().st_size
    if fetched is not None:
        PLUGIN_FETCHED.labels(file_class).inc(fetched)


@contextmanager
def _opened_copy(backend: StorageBackend, key: str) -> Iterator[Source]:
    with backend.local_copy(key) as path, path.open("rb") as stream:
        yield stream


def storable(extraction: Extraction, limits: ExtractionLimits) -> Extraction:
    """What of ``extraction`` both databases can store, within ``limits``, with the reasons."""
    found: list[ExtractionProblem] = []
    kept = [v for v in (_storable_value(v, found) for v in extraction.values) if v is not None]
    if len(kept) > limits.max_values:
        dropped = len(kept) - limits.max_values
        message = f"{dropped} derived values past the first {limits.max_values} were not stored"
        found.append(ExtractionProblem(message))
        kept = kept[: limits.max_values]
    tags = [t for t in (_storable_tag(n, v, found) for n, v in extraction.user_tags) if t]
    # What was not stored as derived comes first: it must survive when only the first are kept.
    problems = [*found, *extraction.errors]
    shown = [_cut_problem(p) for p in problems[: limits.max_problems]]
    omitted = extraction.errors_omitted + max(0, len(problems) - limits.max_problems)
    return replace(extraction, values=kept, user_tags=tags, errors=shown, errors_omitted=omitted)


def _storable_value(value: DerivedValue, found: list[ExtractionProblem]) -> DerivedValue | None:
    name = _clean(value.name, "an attribute name", found)
    problem = text_problem(name, ATTRIBUTE_NAME_MAX)
    if problem is not None:
        message = f"a value of attribute {_shown(name)} was not stored: the name {problem}"
        found.append(ExtractionProblem(message))
        return None
    text = _clean(value.value, f"the value of {_shown(name)}", found)
    if len(text) > DERIVED_VALUE_MAX:
        message = (
            f"the value of {_shown(name)} is {len(text)} characters long; "
            f"its first {DERIVED_VALUE_MAX} are stored"
        )
        found.append(ExtractionProblem(message))
        text = text[:DERIVED_VALUE_MAX]
    detail = value.origin_detail
    if detail is not None:
        detail = _clean(detail, f"the origin detail of {_shown(name)}", found)[:SUBJECT_MAX]
    if (name, text, detail) == (value.name, value.value, value.origin_detail):
        return value
    return replace(value, name=name, value=text, origin_detail=detail)


def _storable_tag(name: str, value: str, found: list[ExtractionProblem]) -> tuple[str, str] | None:
    name = _clean(name, "a user tag name", found)
    problem = text_problem(name, NAME_MAX) or text_problem(tag_attribute(name), ATTRIBUTE_NAME_MAX)
    if problem is not None:
        found.append(ExtractionProblem(f"user tag {_shown(name)} was not recorded: {problem}"))
        return None
    value = _clean(value, f"the value of user tag {_shown(name)}", found)
    if len(value) > DERIVED_VALUE_MAX:
        message = f"the value of user tag {_shown(name)} was cut to {DERIVED_VALUE_MAX} characters"
        found.append(ExtractionProblem(message))
        value = value[:DERIVED_VALUE_MAX]
    return name, value


def _clean(text: str, what: str, found: list[ExtractionProblem]) -> str:
    cleaned = storable_characters(text)
    if cleaned != text:
        message = f"{what} held NUL or lone surrogate characters, stored as U+FFFD"
        found.append(ExtractionProblem(message))
    return cleaned


def _shown(name: str) -> str:
    return repr(name if len(name) <= _SHOWN else name[:_SHOWN] + "...")


def _cut_problem(problem: ExtractionProblem) -> ExtractionProblem:
    message = storable_characters(problem.message)
    if len(message) > PROBLEM_TEXT_MAX:
        message = message[: PROBLEM_TEXT_MAX - 3] + "..."
    return problem if message == problem.message else replace(problem, message=message)


# The classes whose files yield a JobRecord (the record route reads the one stored for them).
RECORD_CLASSES = ("lb", "condor-log")


def job_record_of(extraction: Extraction, file_class: str, name: str) -> tuple[str | None, str]:
    """The JobRecord XML to store for a file of a record class, or None with the reason."""
    if extraction.job_record is not None:
        return storable_characters(extraction.job_record), ""
    why = "; ".join(problem.message for problem in extraction.errors[:2]) or "no plugin derived one"
    shown = f"{file_class} file {name!r}" if name else f"{file_class} file"
    return None, f"the {shown} yields no JobRecord ({why})"


def store_job_record(
    session: Session, row: StoredFile, extraction: Extraction, *, new: bool = False
) -> None:
    """Keep the JobRecord a record-class file yields (or why it yields none) for reading;
    ``new``: the file was inserted in this transaction, so it has no record to replace."""
    if row.file_class in RECORD_CLASSES:
        xml, detail = job_record_of(extraction, row.file_class, row.name)
        put = records.put_new if new else records.put
        put(session, row.id, xml, detail or None, datetime.now(UTC))
