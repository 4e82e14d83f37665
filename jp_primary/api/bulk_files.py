"""``POST /v1/files/bulk``: many small files in one multipart request (docs/uploads.md).

The body is ``multipart/form-data``: first a part ``manifest`` (JSON, ``BulkFilesIn``), then one
part ``file`` per manifest item, in the manifest's order, each with a filename (any: the
manifest names the file; a part without one would be read as text). The parser is Starlette's
(python-multipart): a file part is kept in memory up to 1 MB, then spooled to a temporary file;
the whole body is capped by ``JP_MAX_BULK_BODY`` (the request guard), so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from jp_primary.api import schemas, views
from jp_primary.api.deps import Caller, Services
from jp_primary.api.errors import responses
from jp_primary.api.policies import Trusted
from jp_primary.errors import BadRequest, InvalidInput, PayloadTooLarge
from jp_primary.services.upload_bulk import BulkFile, BulkOutcome, BulkPut

router = APIRouter(tags=["uploads"])

MANIFEST_MAX = 1024 * 1024  # the manifest part's bytes: 100 items of the longest texts fit
_CHUNK = 64 * 1024
_HOW = (
    "send multipart/form-data: a part 'manifest' (JSON: {\"files\": [...]}) and then one part "
    "'file' (with a filename) per manifest item, in the manifest's order"
)

BULK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["manifest", "file"],
                    "properties": {
                        "manifest": {
                            "type": "string",
                            "description": "JSON: BulkFilesIn (the files, in the order of the "
                            "'file' parts)",
                        },
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One part per manifest item, in order, each with "
                            "a filename",
                        },
                    },
                },
                "encoding": {"manifest": {"contentType": "application/json"}},
            }
        },
    }
}


@router.post(
    "/v1/files/bulk",
    openapi_extra=BULK_BODY,
    responses=responses(400, 401, 403, 413, 422, 503),
)
async def put_files_bulk(
    request: Request,
    services: Services,
    brief: Annotated[
        bool,
        Query(
            description="true: each stored file without its extraction's values (its problems "
            "are still counted); for senders that do not read them"
        ),
    ] = False,
    caller: Caller = Trusted,
) -> schemas.BulkFilesOut:
    """Many one-shot uploads in one request (importers of many small files: L&B dumps). Each
    item answers what `PUT /v1/jobs/{key}/files/{class}` with the same headers would (its status,
    and the stored file or the error), except that the same bytes already stored under the name
    answer 200 with that file (the PUT: 409); one item's problem never fails the others. At most
    `MAX_BULK_FILES` (100) items and `JP_MAX_BULK_BODY` bytes (default 16 MiB) per request."""
    form = await _form(request)
    try:
        manifest = _manifest(form)
        parts = form.getlist("file")
        if len(parts) != len(manifest.files):
            raise InvalidInput(
                f"the manifest lists {len(manifest.files)} files but {len(parts)} 'file' parts "
                f"came; {_HOW}"
            )
        items = [
            _item(entry, part, index)
            for index, (entry, part) in enumerate(zip(manifest.files, parts, strict=True))
        ]
        outcomes = await BulkPut(services.uploads, services.registrar).run(caller, items)
    finally:
        await form.close()
    return schemas.BulkFilesOut(results=[_result(i, o, brief) for i, o in enumerate(outcomes)])


async def _form(request: Request) -> FormData:
    media_type, _ = parse_options_header(request.headers.get("content-type", ""))
    if media_type != b"multipart/form-data":
        raise InvalidInput(f"the body must be multipart/form-data; {_HOW}")
    parser = MultiPartParser(
        request.headers,
        request.stream(),
        max_files=schemas.MAX_BULK_FILES,
        max_fields=1,
        max_part_size=MANIFEST_MAX,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        if exc.message.startswith("Too many fields"):
            raise InvalidInput(
                "more than one part without a filename: only 'manifest' is one; give every "
                "'file' part a filename (any; the manifest names the file)"
            ) from None
        if exc.message.startswith("Too many files"):
            raise PayloadTooLarge(
                f"{exc.message} (one 'manifest' part and at most {schemas.MAX_BULK_FILES} "
                "'file' parts): split the files over several requests"
            ) from None
        raise BadRequest(f"malformed multipart body: {exc.message}; {_HOW}") from None


def _manifest(form: FormData) -> schemas.BulkFilesIn:
    found = form.getlist("manifest")
    if len(found) != 1 or not isinstance(found[0], str):
        raise InvalidInput(f"expected one 'manifest' part without a filename; {_HOW}")
    try:
        return schemas.BulkFilesIn.model_validate_json(found[0])
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            # 422, not the 400 of a JSON body: the body is well-formed multipart, one of its
            # (text) fields is not what it must be.
            raise InvalidInput(f"the manifest part is not valid JSON; {_HOW}") from None
        raise RequestValidationError(
            [e | {"loc": ("manifest", *e["loc"])} for e in errors]
        ) from None


def _item(entry: schemas.BulkFileIn, part: UploadFile | str, index: int) -> BulkFile:
    if not isinstance(part, UploadFile):
        raise InvalidInput(
            f"'file' part {index} has no filename, so it would be read as text: give every "
            "'file' part a filename (any; the manifest names the file)"
        )
    return BulkFile(
        jobid=entry.jobid,
        file_class=entry.file_class,
        content=partial(_chunks, part),
        name=entry.name,
        sha256=entry.sha256,
        content_type=entry.content_type,
        register=entry.register_job,
        register_owner=entry.register_owner,
    )


async def _chunks(part: UploadFile) -> AsyncIterator[bytes]:
    await part.seek(0)
    while chunk := await part.read(_CHUNK):
        yield chunk


def _result(index: int, outcome: BulkOutcome, brief: bool) -> schemas.BulkFileOut:
    if outcome.error is not None:
        failed = outcome.error
        return schemas.BulkFileOut(
            index=index, status=failed.status_code, error=failed.error, detail=failed.detail
        )
    stored = outcome.file
    assert stored is not None
    # The values are most of an answer's cost (some 40 per L&B dump).
    file = views.file_out(stored.file, stored.uploader) if brief else views.committed_out(stored)
    # As the one-shot PUT answers (201), but for bytes found stored already (200).
    status = 201 if outcome.stored_now else 200
    return schemas.BulkFileOut(index=index, status=status, file=file, registered=outcome.registered)
