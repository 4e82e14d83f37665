"""Where files live in a backend, and which client-chosen file names are acceptable.

Keys are built by the service only; a client's file name becomes one path component after
validation, so no name can reach outside its job's folder on any backend.
"""

from __future__ import annotations

import unicodedata

from jp_primary.errors import InvalidInput
from jp_primary.text import NAME_MAX, check_text

MAX_NAME_BYTES = 255
STAGING_PREFIX = "staging/"
FILES_PREFIX = "files/"


def validate_file_name(name: str) -> str:
    check_text(name, "file name", NAME_MAX)
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidInput(f"file name longer than {MAX_NAME_BYTES} bytes")
    if name in (".", "..") or "/" in name or "\\" in name:
        raise InvalidInput("file name must be a single path component (no '/', '\\', '.', '..')")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        raise InvalidInput("file name must not contain control characters")
    return name


def final_key(job_key: str, file_class: str, name: str) -> str:
    leaf = "default" if name == "" else f"n/{name}"
    return f"{FILES_PREFIX}{job_key[:2]}/{job_key}/{file_class}/{leaf}"


def staging_prefix(upload_id: str) -> str:
    return f"{STAGING_PREFIX}{upload_id}/"


def staging_key(upload_id: str, attempt: str) -> str:
    return f"{staging_prefix(upload_id)}{attempt}"
