"""gLite job ids: ``https://<bkserver>:<port>/<unique>`` and subjob ids generated from a seed."""

from __future__ import annotations

import base64
import hashlib

# What the L&B library uses when a collection was registered without a seed.
DEFAULT_SEED = "edg_wll_GenerateSubjobIds()"


def unique_part(jobid: str) -> str:
    """The unique part of a jobid (after the last ``/``)."""
    return jobid.rstrip("/").rpartition("/")[2]


def md5_base64(text: str) -> str:
    """md5 in URL-safe base64 without padding: the 22-character unique part of a jobid."""
    digest = hashlib.md5(text.encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def subjob_ids(parent_jobid: str, count: int, seed: str | None) -> list[str]:
    """The ids the L&B server gave the ``count`` subjobs of ``parent_jobid``."""
    prefix, _, unique = parent_jobid.rstrip("/").rpartition("/")
    used_seed = seed if seed else DEFAULT_SEED
    return [f"{prefix}/{md5_base64(f'{unique},{used_seed},{i}')}" for i in range(count)]
