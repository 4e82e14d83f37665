"""What the crash tests send and how they look at the result: test data and API calls.

The data is generated, never held whole: a large upload is a reproducible stream of chunks (so a
retry can send the same bytes again), a sandbox archive is a tar of many empty entries (the
sandbox plugin derives two values per entry, which makes a commit take long enough to be
interrupted).
"""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from jp_primary.services.storage_keys import final_key
from tests.crash.server import ServiceProcess
from tests.helpers import ALICE, job_body, registered_key

MiB = 1024 * 1024
ARCHIVE_MTIME = 1_700_000_000


def pattern_chunks(seed: int, size: int, chunk: int = MiB) -> Iterator[bytes]:
    """``size`` reproducible pseudo-random bytes; each chunk differs (it starts with its index)."""
    block = random.Random(seed).randbytes(chunk)
    for index, start in enumerate(range(0, size, chunk)):
        yield (index.to_bytes(8, "big") + block[8:])[: min(chunk, size - start)]


def pattern_sha256(seed: int, size: int) -> str:
    digest = hashlib.sha256()
    for piece in pattern_chunks(seed, size):
        digest.update(piece)
    return digest.hexdigest()


def sandbox_entry_names(entries: int) -> list[str]:
    return [f"sandbox/{index // 1000:03d}/entry-{index:06d}.txt" for index in range(entries)]


def sandbox_archive(entries: int) -> bytes:
    """A plain tar of ``entries`` empty regular files (two derived values each)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in sandbox_entry_names(entries):
            info = tarfile.TarInfo(name)
            info.mtime = ARCHIVE_MTIME
            archive.addfile(info)
    return buffer.getvalue()


@dataclass(frozen=True)
class StoredFile:
    """A commit the service acknowledged (200) and must keep forever."""

    job_key: str
    file_class: str
    name: str
    sha256: str
    size: int


class Archive:
    """The service's API as ALICE sees it, on whichever port the service listens now."""

    def __init__(self, service: ServiceProcess) -> None:
        self.service = service

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return self.service.client(timeout)

    @property
    def headers(self) -> dict[str, str]:
        return self.service.auth(ALICE)

    def register(self) -> str:
        with self.client() as client:
            return registered_key(client.post("/v1/jobs", json=job_body(), headers=self.headers))

    def start_upload(self, key: str, file_class: str, name: str, **declared: object) -> str:
        body = {"class": file_class, "name": name, **declared}
        with self.client() as client:
            response = client.post(f"/v1/jobs/{key}/uploads", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["upload_id"])

    def send(self, upload_id: str, content: bytes | Iterator[bytes]) -> httpx.Response:
        with self.client() as client:
            return client.put(f"/v1/uploads/{upload_id}", content=content, headers=self.headers)

    def commit(self, upload_id: str, client: httpx.Client | None = None) -> httpx.Response:
        if client is not None:
            return client.post(f"/v1/uploads/{upload_id}/commit", headers=self.headers)
        with self.client() as own:
            return own.post(f"/v1/uploads/{upload_id}/commit", headers=self.headers)

    def store(self, key: str, file_class: str, name: str, data: bytes) -> StoredFile:
        """Start, send and commit ``data``; return the acknowledged commit."""
        upload_id = self.start_upload(key, file_class, name)
        assert self.send(upload_id, data).status_code == 204
        committed = self.commit(upload_id)
        assert committed.status_code == 200, committed.text
        body = committed.json()
        return StoredFile(key, file_class, name, body["sha256"], body["size"])

    def listed(self, key: str) -> list[dict[str, object]]:
        with self.client() as client:
            response = client.get(f"/v1/jobs/{key}/files", headers=self.headers)
        assert response.status_code == 200, response.text
        return list(response.json())

    def download_sha256(self, key: str, file_class: str, name: str) -> tuple[int, str | None]:
        """Status and, for a 200, the sha256 of the streamed body."""
        params = {"name": name}
        digest = hashlib.sha256()
        with (
            self.client() as client,
            client.stream(
                "GET", f"/v1/jobs/{key}/files/{file_class}", params=params, headers=self.headers
            ) as response,
        ):
            if response.status_code != 200:
                return response.status_code, None
            for piece in response.iter_bytes():
                digest.update(piece)
        return 200, digest.hexdigest()

    def file_values(self, key: str) -> list[dict[str, object]]:
        """Every value of the job that a file's plugin derived (origin FILE)."""
        with self.client(timeout=120.0) as client:
            response = client.get(f"/v1/jobs/{key}/attributes", headers=self.headers)
        assert response.status_code == 200, response.text
        return [v for v in response.json()["values"] if v["origin"] == "FILE"]

    def assert_intact(self, stored: list[StoredFile]) -> None:
        """Every acknowledged commit is listed and downloads with its sha256."""
        for file in stored:
            listed = {(f["class"], f["name"]): f["sha256"] for f in self.listed(file.job_key)}
            assert listed.get((file.file_class, file.name)) == file.sha256, file
            assert self.download_sha256(file.job_key, file.file_class, file.name) == (
                200,
                file.sha256,
            ), file


def final_path(root: Path, key: str, file_class: str, name: str) -> Path:
    return root / final_key(key, file_class, name)


def disk_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}
