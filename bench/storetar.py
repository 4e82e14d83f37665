"""The storage benchmark's sandbox case: a plain tar of many members uploaded straight to S3 and
committed; how many of its bytes the sandbox plugin had the store serve (the service's
``jp_plugin_fetched_bytes_total`` counter, read from ``/metrics`` before and after) and how long
the commit took."""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from storeclients import Api, curl_post_form

MIB = 1024 * 1024
_FETCHED = re.compile(r'^jp_plugin_fetched_bytes_total\{file_class="osb"\} (\S+)$', re.M)


@dataclass(frozen=True)
class TarRun:
    size: int
    members: int
    fetched: int
    post_seconds: float
    commit_seconds: float
    values: int


def make_tar(path: Path, size: int, members: int) -> tuple[int, str]:
    """A plain tar of ``members`` files of random bytes, about ``size`` bytes in all; its
    size and sha256."""
    block = os.urandom(MIB)
    each = max(1, size // members - 512)
    with tarfile.open(path, "w:", format=tarfile.GNU_FORMAT) as tar:
        for number in range(members):
            info = tarfile.TarInfo(f"out/dir-{number % 97}/file-{number:06d}.dat")
            info.size = each
            info.mtime = 1_700_000_000 + number
            data = (number.to_bytes(8, "big") + block * (1 + each // MIB))[:each]
            tar.addfile(info, _Reader(data))
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = memoryview(data), 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.at + n
        out = bytes(self.data[self.at : end])
        self.at += len(out)
        return out


def fetched_so_far(url: str) -> int:
    found = _FETCHED.search(httpx.get(f"{url}/metrics", timeout=30).text)
    return int(float(found.group(1))) if found else 0


def tar_commit(url: str, token: str, path: Path, size: int, sha256: str, members: int) -> TarRun:
    """Start a direct upload, POST the tar to the store, commit; the plugin's fetched bytes."""
    api = Api(url, token, size, first_job=100_000_000)
    try:
        before = fetched_so_far(url)
        ticket = api.start_direct(sha256)
        started = time.perf_counter()
        curl_post_form(ticket["url"], ticket["fields"], path, api.max_seconds)
        posted = time.perf_counter()
        answer = api.commit(ticket["upload_id"])
        committed = time.perf_counter()
        if answer.get("sha256") != sha256:
            raise RuntimeError(f"the service stored something else: {answer}")
        values = answer.get("extraction", {}).get("values")
        count = len(values) if isinstance(values, list) else -1
        return TarRun(
            size, members, fetched_so_far(url) - before, posted - started,
            committed - posted, count,
        )  # fmt: skip
    finally:
        api.close()
