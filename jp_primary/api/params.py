"""Path and query parameters shared by the routes, typed with the storable-text rule
(``jp_primary.text``): NUL, lone surrogates and over-long text are a 422 before any database work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from jp_primary.api.schemas import FILE_CLASS_DOC, FILE_CLASS_EXAMPLES, JOBID_DOC
from jp_primary.text import (
    AttributeNameText,
    ClassText,
    KeyText,
    NameText,
    SubjectText,
    UploadIdText,
)

JobKey = Annotated[KeyText, Path(description="The job's key (the last segment of its jobid)")]
FileClass = Annotated[ClassText, Path(description=FILE_CLASS_DOC, examples=FILE_CLASS_EXAMPLES)]
UploadId = Annotated[UploadIdText, Path(description="As returned when the upload started")]
FileName = Annotated[NameText, Query(description="Distinguishes several files of one class")]
JobIdQuery = Annotated[SubjectText, Query(description=JOBID_DOC)]
AttributeNames = Annotated[
    list[AttributeNameText] | None, Query(description="Attribute names or aliases; none: all")
]
