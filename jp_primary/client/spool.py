"""Fire and forget: ``upload_files`` hands sandbox files to a durable spool and returns at once.

The files are tarred into the spool's ``files/`` folder and a message naming the tarball is
written to ``new/`` (both fsynced, directories too), so once the call returns the files survive
the caller's death. A sender (``jp-primary import`` or ``jp-primary spool send``) delivers them
later, idempotently. Nothing here touches the network.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from jp_primary.client.maildir import Maildir, fsync_dir, unique_name
from jp_primary.client.messages import (
    SANDBOX_CLASSES,
    FileMessage,
    format_file_message,
    valid_jobid,
)

_COPY_BUFFER = 1 << 20


def default_spool() -> Path:
    """``JP_SPOOL``, else ``$JP_HOME/spool`` (``./var/spool``)."""
    named = os.environ.get("JP_SPOOL")
    if named:
        return Path(named)
    return Path(os.environ.get("JP_HOME") or "./var") / "spool"


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # The same files tar to the same bytes whoever sends them (idempotent delivery compares
    # digests): no owner names or ids.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def upload_files(
    jobid: str,
    files: Iterable[str | Path],
    *,
    proxy: str | Path | None = None,
    spool: str | Path | None = None,
    url: str | None = None,
    file_class: str = "isb",
    name: str = "",
) -> Path:
    """Spool ``files`` as one tarball of class ``file_class`` (``isb`` or ``osb``) for ``jobid``
    and return the message's path. Raises ``ValueError`` for a bad jobid or class and
    ``OSError`` when a file cannot be read (nothing is spooled then)."""
    if not valid_jobid(jobid):
        raise ValueError(f"not a jobid: {jobid!r}")
    if file_class not in SANDBOX_CLASSES:
        raise ValueError(f"class {file_class!r}: upload_files sends isb or osb")
    box = Maildir(spool or default_spool())
    tar_path = box.dir("files") / f"{unique_name()}.tar"
    try:
        with tar_path.open("wb") as raw:
            with tarfile.TarFile(
                fileobj=raw, mode="w", format=tarfile.GNU_FORMAT, copybufsize=_COPY_BUFFER
            ) as tar:
                for item in files:
                    path = Path(item)
                    # GNU tar's habit, as the original: absolute names lose the leading "/".
                    tar.add(path, arcname=str(path).lstrip("/"), filter=_normalised)
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        tar_path.unlink(missing_ok=True)
        raise
    fsync_dir(tar_path.parent)
    message = FileMessage(
        jobid=jobid,
        file=str(tar_path.resolve()),
        file_class=file_class,
        name=name,
        jpps=url,
        proxy=str(proxy) if proxy else None,
    )
    return box.deliver(format_file_message(message))
