"""What a plugin is handed: a stream when it declares ``reads = "stream"``, a local path when it
declares ``"path"`` or nothing (plugins written before streams existed), and what it had a remote
store serve is counted."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, cast

import anyio
from prometheus_client import REGISTRY

from jp_primary.backends.filesystem import FilesystemBackend, FilesystemOptions
from jp_primary.backends.reader import RangeReader
from jp_primary.plugins.base import ExtractContext, Extraction, wants_stream
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services.extraction import FileIdentity, extract_sync


class Recorder:
    name: ClassVar[str] = "recorder"
    aliases: ClassVar[dict[str, str]] = {}
    namespaces: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def extract(self, source: Any, context: ExtractContext) -> Extraction:
        head = source.read(4) if not isinstance(source, Path) else source.read_bytes()[:4]
        self.seen.append((type(source), head))
        return Extraction()


class StreamPlugin(Recorder):
    classes: ClassVar[tuple[str, ...]] = ("streamed",)
    reads: ClassVar[str] = "stream"


class OldPlugin(Recorder):
    classes: ClassVar[tuple[str, ...]] = ("legacy",)  # no ``reads``: a path, as before


class RemoteLookalike(FilesystemBackend):
    """A local directory posing as a remote store whose reader counts what it fetched."""

    remote: ClassVar[bool] = True

    @contextmanager
    def open_reader(self, key: str) -> Iterator[BinaryIO]:
        path = self.path(key)

        def fetch(offset: int, length: int) -> bytes:
            with path.open("rb") as f:
                f.seek(offset)
                return f.read(length)

        with RangeReader(path.stat().st_size, fetch) as reader:
            yield cast(BinaryIO, reader)


def fetched_total(file_class: str) -> float:
    value = REGISTRY.get_sample_value("jp_plugin_fetched_bytes_total", {"file_class": file_class})
    return value or 0.0


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def run(backend: FilesystemBackend, registry: PluginRegistry, file_class: str) -> None:
    data = b"JPJP" + os.urandom(100_000)
    anyio.run(lambda: backend.put_stream(f"f/{file_class}", _once(data), max_size=1 << 20))
    file = FileIdentity("https://lb.example.org/x", "x", file_class, "")
    extract_sync(registry, backend, f"f/{file_class}", file, datetime.now(UTC))


def test_stream_plugins_get_a_stream_and_others_a_path(tmp_path: Path) -> None:
    streamed, old = StreamPlugin(), OldPlugin()
    assert wants_stream(streamed)
    assert not wants_stream(old)
    registry = PluginRegistry.from_plugins([streamed, old])
    backend = FilesystemBackend(FilesystemOptions(root=tmp_path))
    run(backend, registry, "streamed")
    run(backend, registry, "legacy")
    ((kind, head),) = streamed.seen
    assert not issubclass(kind, Path)
    assert head == b"JPJP"
    ((kind, head),) = old.seen
    assert issubclass(kind, Path)
    assert head == b"JPJP"


def test_what_a_plugin_had_a_remote_store_serve_is_counted(tmp_path: Path) -> None:
    streamed, old = StreamPlugin(), OldPlugin()
    registry = PluginRegistry.from_plugins([streamed, old])
    backend = RemoteLookalike(FilesystemOptions(root=tmp_path))
    before_stream, before_path = fetched_total("streamed"), fetched_total("legacy")
    run(backend, registry, "streamed")
    run(backend, registry, "legacy")
    # Four bytes asked for: one small first fetch, not the 100 kB object.
    assert 4 <= fetched_total("streamed") - before_stream <= 4096
    # A file-name plugin on a remote store costs the whole object.
    assert fetched_total("legacy") - before_path == 100_004
