"""The spool's message formats, as the L&B server, its dump exporter and the WMS write them.

- registration: ``<jobid>\\n<owner DN>`` (L&B ``-J``);
- dump: lines ``jobid <id>``, ``file <path>``, optional ``jpps <host:port>`` and
  ``proxy <path>``, keys separated from values by spaces or a tab (the exporter writes no newline
  before ``jpps``: ``file /x/ujobjpps host:9000`` is read as two lines);
- sandbox (``upload_files``): the dump keys plus ``class isb|osb``, optional ``name``, and one
  ``member <name in the tarball>`` line per file; ``file`` is then a prefix in the spool:
  the files (hard links or copies) are ``<file>.0``, ``<file>.1``, ..., tarred by the sender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The service's rule for jobids, checked here too so a bad one goes to undeliverable/ at once.
_JOBID = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?/[A-Za-z0-9._~-]{1,128}$")
_KEYS = ("jobid", "file", "jpps", "proxy", "class", "name", "member")
_KV = re.compile(r"^(?P<key>[A-Za-z]+)[ \t]+(?P<value>.*?)\s*$")
# The exporter's quirk: "file <path>jpps <host:port>" on one line.
_GLUED_JPPS = re.compile(r"^(?P<file>file[ \t]+.*?)(?P<jpps>jpps[ \t]+\S+:\d+)\s*$")
MAX_MESSAGE = 64 * 1024
SANDBOX_CLASSES = ("isb", "osb")


class Malformed(ValueError):
    """A message no retry can deliver."""


@dataclass(frozen=True)
class Registration:
    jobid: str
    owner: str


@dataclass(frozen=True)
class FileMessage:
    """A dump (class ``lb``) or a sandbox tarball (``isb``/``osb``) to store for a job."""

    jobid: str
    file: str
    file_class: str = "lb"
    name: str = ""
    jpps: str | None = None
    proxy: str | None = None
    members: tuple[str, ...] = ()


Message = Registration | FileMessage


def valid_jobid(jobid: str) -> bool:
    return len(jobid) <= 1024 and _JOBID.match(jobid) is not None


def parse(data: bytes) -> Message:
    if not data.strip():
        raise Malformed("empty message")
    if len(data) > MAX_MESSAGE:
        raise Malformed(f"message of {len(data)} bytes; the formats are a few lines")
    if b"\0" in data:
        raise Malformed("binary data (a NUL byte) in the message")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"not UTF-8 text: {exc}") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    if "://" in lines[0].split(None, 1)[0] and not lines[0].lower().startswith("jobid"):
        return _registration(lines)
    return _file_message(lines)


def _registration(lines: list[str]) -> Registration:
    jobid = lines[0].strip()
    if not valid_jobid(jobid):
        raise Malformed(f"not a jobid: {jobid[:200]!r}")
    if len(lines) != 2:
        raise Malformed("a registration is two lines: the jobid and the owner's DN")
    return Registration(jobid, lines[1].strip())


def _file_message(lines: list[str]) -> FileMessage:
    fields: dict[str, str] = {}
    members: list[str] = []
    for raw in lines:
        glued = _GLUED_JPPS.match(raw)
        for line in (glued["file"], glued["jpps"]) if glued else (raw,):
            m = _KV.match(line.strip())
            if m is None:
                raise Malformed(f"not a 'key value' line: {line[:200]!r}")
            key = m["key"].lower()
            if key not in _KEYS:
                raise Malformed(f"unknown key {m['key']!r} (known: {', '.join(_KEYS)})")
            if key == "member":
                members.append(m["value"])
            else:
                fields[key] = m["value"]
    for key in ("jobid", "file"):
        if not fields.get(key):
            raise Malformed(f"no {key} line")
    if not valid_jobid(fields["jobid"]):
        raise Malformed(f"not a jobid: {fields['jobid'][:200]!r}")
    file_class = fields.get("class", "lb").lower()
    if file_class not in ("lb", *SANDBOX_CLASSES):
        raise Malformed(f"class {file_class!r}: the spool carries lb, isb and osb files")
    return FileMessage(
        jobid=fields["jobid"],
        file=fields["file"],
        file_class=file_class,
        name=fields.get("name", ""),
        jpps=fields.get("jpps"),
        proxy=fields.get("proxy"),
        members=tuple(members),
    )


def format_file_message(msg: FileMessage) -> bytes:
    lines = [f"jobid\t{msg.jobid}", f"file\t{msg.file}"]
    if msg.file_class != "lb":
        lines.append(f"class\t{msg.file_class}")
    if msg.name:
        lines.append(f"name\t{msg.name}")
    if msg.proxy:
        lines.append(f"proxy\t{msg.proxy}")
    if msg.jpps:
        lines.append(f"jpps\t{msg.jpps}")
    lines += [f"member\t{member}" for member in msg.members]
    return ("\n".join(lines) + "\n").encode()


def format_registration(jobid: str, owner: str) -> bytes:
    return f"{jobid}\n{owner}\n".encode()
