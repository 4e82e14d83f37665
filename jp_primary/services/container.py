"""Everything a process serves requests with, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from jp_primary.auth.authenticate import Authenticator, build_authenticator
from jp_primary.backends.base import StorageBackend
from jp_primary.backends.registry import create_backend
from jp_primary.config import Settings
from jp_primary.db.repositories.health import ping
from jp_primary.db.session import Database, create_db_engine
from jp_primary.door.grants import configured_door
from jp_primary.errors import StorageUnavailable
from jp_primary.plugins.registry import PluginRegistry
from jp_primary.services.attributes import AttributeService
from jp_primary.services.extraction import ExtractionLimits
from jp_primary.services.feeds import FeedLimits, FeedService, build_engine
from jp_primary.services.files import FileService
from jp_primary.services.gc import GcService
from jp_primary.services.jobs import Registrar
from jp_primary.services.provenance.snapshot import ProvenanceService
from jp_primary.services.quarantine import QuarantineService
from jp_primary.services.query import QueryService
from jp_primary.services.records import RecordService
from jp_primary.services.reextract import ReextractService
from jp_primary.services.tags import TagLimits, TagService, reserved_namespaces
from jp_primary.services.uploads import UploadLimits, UploadService


def _tag_limits(settings: Settings) -> TagLimits:
    caps = settings.tags
    return TagLimits(caps.max_per_request, caps.max_per_job, caps.max_value_length)


def extraction_limits(settings: Settings) -> ExtractionLimits:
    return ExtractionLimits(
        max_problems=settings.extraction.max_problems,
        max_values=settings.extraction.max_values_per_file,
    )


@dataclass
class AppServices:
    settings: Settings
    db: Database
    backend: StorageBackend
    plugins: PluginRegistry
    authenticator: Authenticator
    uploads: UploadService
    files: FileService
    registrar: Registrar
    tags: TagService
    attributes: AttributeService
    records: RecordService
    quarantine: QuarantineService
    gc: GcService
    reextract: ReextractService
    feeds: FeedService
    provenance: ProvenanceService
    query: QueryService

    @classmethod
    def build(cls, settings: Settings) -> AppServices:
        engine = create_db_engine(settings.database_url, settings.database.pool_size)
        plugins = PluginRegistry()
        plugins.load()
        types = plugins.attribute_types()
        db = Database(engine, types)
        backend = create_backend(settings)
        limits = UploadLimits(
            max_file_size=int(settings.storage.max_file_size),
            deadline_seconds=settings.storage.upload_deadline,
            extraction=extraction_limits(settings),
        )
        files = FileService(db, backend, plugins)
        return cls(
            settings=settings,
            db=db,
            backend=backend,
            plugins=plugins,
            authenticator=build_authenticator(settings),
            uploads=UploadService(db, backend, plugins, limits, configured_door(settings, engine)),
            files=files,
            registrar=Registrar(
                db, backend, timedelta(days=settings.storage.quarantine_retention_days)
            ),
            tags=TagService(db, _tag_limits(settings), reserved_namespaces(plugins)),
            attributes=AttributeService(db),
            records=RecordService(db, backend, plugins),
            quarantine=QuarantineService(db, backend),
            gc=GcService(db, backend),
            reextract=ReextractService(db, backend, plugins, extraction_limits(settings)),
            feeds=FeedService(
                build_engine(db, plugins, settings.feed.batch_jobs),
                FeedLimits(settings.feed.default_ttl, settings.feed.max_ttl),
            ),
            provenance=ProvenanceService(db, files),
            query=QueryService(db, types, settings.database.query_timeout),
        )

    async def check_ready(self) -> None:
        """Raise ``StorageUnavailable`` unless the database and the storage answer."""
        try:
            await self.db.run(ping)
        except Exception as exc:
            raise StorageUnavailable(f"database unavailable: {type(exc).__name__}") from None
        await self.backend.check()

    async def close(self) -> None:
        await self.registrar.close()
        await self.uploads.close()
        await self.backend.close()
        self.db.engine.dispose()
