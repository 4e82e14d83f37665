"""Fire and forget: ``upload_files`` hands sandbox files to a durable spool and returns at once.

The call does no copying it can avoid: each file is hard-linked into the spool's ``files/`` as
``<message>.<i>`` (copied only when a link is impossible: another file system, or a kernel that
protects links to other users' files), and a message naming them is written to ``new/``.
``files/``, the message and ``new/`` are fsynced before the call returns (three fsyncs, the
fewest that order "files, then the message that names them" on any POSIX file system), so the
files survive the caller's death and a crash of the machine; a link keeps the bytes even when
the caller deletes its file right after (what the WMS purger does). The sender
(``jp-primary import`` or ``jp-primary spool send``) tars them, deterministically, when it
delivers. Nothing here touches the network.
"""

from __future__ import annotations

import errno
import os
import shutil
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from jp_primary.client.maildir import Maildir, fsync_dir, unique_name, write_durably
from jp_primary.client.messages import (
    SANDBOX_CLASSES,
    FileMessage,
    format_file_message,
    valid_jobid,
)

_COPY_BUFFER = 1 << 20
_LINK_REFUSED = {errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK}


def default_spool() -> Path:
    """``JP_SPOOL``, else ``$JP_HOME/spool`` (``./var/spool``)."""
    named = os.environ.get("JP_SPOOL")
    if named:
        return Path(named)
    return Path(os.environ.get("JP_HOME") or "./var") / "spool"


def _member_name(path: Path) -> str:
    # GNU tar's habit, as the original: absolute names lose the leading "/".
    name = str(path).lstrip("/")
    if not name or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise ValueError(f"{str(path)!r}: a file name with control characters cannot be spooled")
    return name


def _keep(source: Path, target: Path) -> None:
    """A link to ``source`` at ``target``, or a durable copy when linking is refused."""
    if not source.is_file():
        raise FileNotFoundError(errno.ENOENT, "not a regular file", str(source))
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in _LINK_REFUSED:
            raise
        shutil.copyfile(source, target)
        shutil.copystat(source, target)
        with target.open("rb+") as fh:
            os.fsync(fh.fileno())


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
    """Spool ``files`` as one sandbox of class ``file_class`` (``isb`` or ``osb``) for ``jobid``
    and return the message's path. Raises ``ValueError`` for a bad jobid, class or file name and
    ``OSError`` when a file cannot be read (nothing is spooled then)."""
    if not valid_jobid(jobid):
        raise ValueError(f"not a jobid: {jobid!r}")
    if file_class not in SANDBOX_CLASSES:
        raise ValueError(f"class {file_class!r}: upload_files sends isb or osb")
    paths = [Path(f) for f in files]
    members = tuple(_member_name(p) for p in paths)
    box = Maildir(spool or default_spool())
    message_name = unique_name()
    prefix = box.dir("files").resolve() / message_name
    kept: list[Path] = []
    try:
        for index, path in enumerate(paths):
            kept.append(member_path(prefix, index))
            _keep(path, kept[-1])
        fsync_dir(prefix.parent)
        message = FileMessage(
            jobid=jobid,
            file=str(prefix),
            file_class=file_class,
            name=name,
            jpps=url,
            proxy=str(proxy) if proxy else None,
            members=members,
        )
        return box.deliver(format_file_message(message), message_name)
    except BaseException:
        for link in kept:
            link.unlink(missing_ok=True)
        raise


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # The same files tar to the same bytes whoever sends them, and whenever (idempotent delivery
    # compares digests): no owner names or ids; the files' own mtimes and modes.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def member_path(prefix: Path, index: int) -> Path:
    """Where a spooled sandbox keeps its file number ``index``: ``<prefix>.<index>``."""
    return prefix.with_name(f"{prefix.name}.{index}")


def build_tarball(prefix: Path, members: Sequence[str], dest: Path) -> Path:
    """The tarball of a spooled sandbox: file ``<prefix>.<i>`` stored as ``members[i]``."""
    with dest.open("wb") as raw:
        with tarfile.TarFile(
            fileobj=raw, mode="w", format=tarfile.GNU_FORMAT, copybufsize=_COPY_BUFFER
        ) as tar:
            for index, member in enumerate(members):
                tar.add(member_path(prefix, index), arcname=member, filter=_normalised)
        raw.flush()
        os.fsync(raw.fileno())
    return dest


__all__ = ["build_tarball", "default_spool", "upload_files", "write_durably"]
