"""Who may do what with a job.

A caller who is not allowed to touch an existing job gets 403 (never a different answer for
"exists but not yours" on one route and another on the next); an unknown job key is 404 for
everyone. Job keys are 22 random characters for L&B jobids, so the 403 reveals nothing useful.
"""

from __future__ import annotations

from jp_primary.auth.identity import Identity, Role
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.errors import Forbidden


def is_owner(identity: Identity, job: JobInfo) -> bool:
    return identity.subject == job.owner


def may_read(identity: Identity, job: JobInfo) -> bool:
    """Owner, trusted services and admins read a job's files, tags and attributes."""
    return is_owner(identity, job) or identity.has(Role.TRUSTED) or identity.has(Role.ADMIN)


def ensure_read(identity: Identity, job: JobInfo) -> None:
    if not may_read(identity, job):
        raise Forbidden("only the job's owner, trusted services and admins may read this job")


def ensure_write(identity: Identity, job: JobInfo) -> None:
    """Owner and trusted services upload files and record tags."""
    if not (is_owner(identity, job) or identity.has(Role.TRUSTED)):
        raise Forbidden("only the job's owner and trusted services may change this job")
