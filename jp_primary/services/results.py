"""The dataclasses services hand to their callers.

``api/`` shapes these into response bodies and never imports ``jp_primary.db``: the job, file and
value dataclasses the repositories return are the service-level results as they are (one
dataclass per thing, converted from the ORM row at the repository boundary).
"""

from __future__ import annotations

from jp_primary.db.repositories.files import StoredFile
from jp_primary.db.repositories.jobs import JobInfo
from jp_primary.db.repositories.values import StoredValue
from jp_primary.services.files import FileView, JobView
from jp_primary.services.upload_commit import CommittedFile

__all__ = ["CommittedFile", "FileView", "JobInfo", "JobView", "StoredFile", "StoredValue"]
