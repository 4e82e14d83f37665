"""The storage benchmark's commit anatomy: the store operations a commit performs (stat,
publish, the plugin's full download), repeated by boto3 / ftplib with the service's settings on a
copy of the file and timed one by one, so each one's share of a commit can be read off."""

from __future__ import annotations

import contextlib
import ftplib
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from storeservers import BUCKET, FTP_PASSWORD, FTP_USER

MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # JP_S3_PART_SIZE's default
FTP_BLOCK = MIB


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def s3_commit_anatomy(client: Any, source: Path, work: Path) -> dict[str, float]:
    """What a commit asks of the store (S3Backend.stat, publish, local_copy for the plugin),
    done here on a copy of the file, so each step's share can be read off."""
    staging, final, local = "anatomy/staging", "anatomy/final", work / "anatomy.bin"
    parts = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE)
    client.upload_file(str(source), BUCKET, staging, Config=parts)
    copy = TransferConfig(multipart_threshold=512 * MIB, multipart_chunksize=512 * MIB)
    download = TransferConfig(
        multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=4
    )
    copy_source = {"Bucket": BUCKET, "Key": staging}
    steps = {
        "stat": lambda: client.head_object(Bucket=BUCKET, Key=staging, ChecksumMode="ENABLED"),
        "publish (copy)": lambda: client.copy(copy_source, BUCKET, final, Config=copy),
        "publish (delete)": lambda: client.delete_object(Bucket=BUCKET, Key=staging),
        "local_copy": lambda: client.download_file(BUCKET, final, str(local), Config=download),
    }
    try:
        return {name: timed(step) for name, step in steps.items()}
    finally:
        local.unlink(missing_ok=True)
        client.delete_object(Bucket=BUCKET, Key=final)


def _retrieve(ftp: ftplib.FTP, name: str, local: Path, block: int) -> None:
    with local.open("wb") as out:
        ftp.retrbinary(f"RETR {name}", out.write, block)


def ftp_commit_anatomy(port: int, source: Path, work: Path) -> dict[str, float]:
    """What a commit asks of the FTP server (rename, then local_copy: RETR into a temporary
    file with ftplib's default 8 KiB blocks, as FTPBackend.local_copy does, and with 1 MiB)."""
    local = work / "anatomy.bin"
    with ftplib.FTP() as ftp:  # noqa: S321  (the server under test speaks plain FTP)
        ftp.connect("127.0.0.1", port, timeout=60)
        ftp.login(FTP_USER, FTP_PASSWORD)
        with source.open("rb") as f:
            ftp.storbinary("STOR anatomy.tmp", f, blocksize=FTP_BLOCK)
        try:
            steps = {"publish (rename)": timed(lambda: ftp.rename("anatomy.tmp", "anatomy.bin"))}
            for label, block in (("local_copy", 8192), ("local_copy with 1 MiB blocks", MIB)):
                steps[label] = timed(partial(_retrieve, ftp, "anatomy.bin", local, block))
            return steps
        finally:
            local.unlink(missing_ok=True)
            with contextlib.suppress(ftplib.Error):
                ftp.delete("anatomy.bin")
