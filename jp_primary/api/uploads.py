from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from jp_primary.api import schemas, views
from jp_primary.api.deps import Caller, Services, base_url
from jp_primary.api.errors import responses
from jp_primary.api.params import FileClass, FileName, JobKey, UploadId
from jp_primary.api.policies import AnyUserForJobWrite, AnyUserForUpload
from jp_primary.errors import InvalidInput
from jp_primary.services.uploads import Registration, UploadRequest
from jp_primary.text import check_media_type

router = APIRouter(tags=["uploads"])

# Not required: an empty body is a file of zero bytes.
RAW_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


RegisterJobid = Annotated[
    str | None,
    Header(
        alias="X-Register-Jobid",
        description="Register this job first when the service does not know it (its key must "
        "be the path's key); a job already registered is left as it is",
    ),
]
RegisterOwner = Annotated[
    str | None,
    Header(
        alias="X-Register-Owner",
        description="The owner of that registration (default: the caller; another owner needs "
        "the trusted role, as with POST /v1/jobs)",
    ),
]


@router.post(
    "/v1/jobs/{key}/uploads",
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 401, 403, 404, 409, 413, 422, 503),
)
async def start_upload(
    key: JobKey,
    body: schemas.UploadIn,
    request: Request,
    services: Services,
    caller: Caller = AnyUserForJobWrite,
) -> schemas.UploadOut:
    """Start an upload: reserve (class, name) and say where to send the bytes. Supersedes the
    caller's own unfinished upload of the same (class, name)."""
    req = UploadRequest(
        body.file_class, body.name, body.content_type, body.size, body.sha256, body.direct
    )
    ticket = await services.uploads.start(caller, key, req)
    if ticket.direct is None:
        url = f"{base_url(request, services)}/v1/uploads/{ticket.upload_id}"
        return schemas.UploadOut(
            upload_id=ticket.upload_id, method="api", url=url, expires_at=ticket.expires_at
        )
    return schemas.UploadOut(
        upload_id=ticket.upload_id,
        method=ticket.method,
        url=ticket.direct.url,
        fields=ticket.direct.fields or None,
        headers=ticket.direct.headers or None,
        expires_at=ticket.expires_at,
    )


@router.put(
    "/v1/uploads/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=RAW_BODY,
    responses=responses(401, 403, 404, 409, 410, 413, 422, 503),
)
async def send_bytes(
    upload_id: UploadId, request: Request, services: Services, caller: Caller = AnyUserForUpload
) -> Response:
    """Stream the bytes of an upload (any length, constant memory; a retry replaces them). With
    `Content-Range: bytes FIRST-LAST/TOTAL` the send is resumable: ranges are kept as they
    arrive, `GET /v1/uploads/{upload_id}` says how many bytes are in, and the next range starts
    there (a range that does not start there, nor at 0 to start over, gets 409)."""
    await services.uploads.receive(
        caller, upload_id, request.stream(), request.headers.get("content-range")
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/uploads/{upload_id}", responses=responses(401, 403, 404, 409, 410, 422, 503))
async def upload_progress(
    upload_id: UploadId, services: Services, caller: Caller = AnyUserForUpload
) -> schemas.UploadProgressOut:
    """How far an upload in progress has come: the bytes stored from byte 0 on (where a
    resumable send goes on) and whether all are in."""
    found = await services.uploads.progress(caller, upload_id)
    return schemas.UploadProgressOut(
        upload_id=found.upload.id,
        state=found.upload.state,
        method=found.upload.method,
        received=found.received,
        complete=found.complete,
        size=found.upload.declared_size,
        expires_at=found.upload.expires_at,
    )


@router.post(
    "/v1/uploads/{upload_id}/commit", responses=responses(401, 403, 404, 409, 410, 422, 503)
)
async def commit_upload(
    upload_id: UploadId, services: Services, caller: Caller = AnyUserForUpload
) -> schemas.CommittedOut:
    """Verify size and sha256, make the file visible, derive its attributes."""
    return views.committed_out(await services.uploads.commit(caller, upload_id))


@router.delete(
    "/v1/uploads/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409, 410, 422),
)
async def abort_upload(
    upload_id: UploadId, services: Services, caller: Caller = AnyUserForUpload
) -> Response:
    """Abort an upload in progress; its bytes are dropped."""
    await services.uploads.abort(caller, upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/v1/jobs/{key}/files/{file_class}",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=RAW_BODY,
    responses=responses(401, 403, 404, 409, 410, 413, 422, 503),
)
async def put_file(
    key: JobKey,
    file_class: FileClass,
    request: Request,
    services: Services,
    response: Response,
    name: FileName = "",
    register_jobid: RegisterJobid = None,
    register_owner: RegisterOwner = None,
    caller: Caller = AnyUserForJobWrite,
) -> schemas.CommittedOut:
    """Upload and commit in one request (fire and forget); X-Content-SHA256 is verified. A retry
    of the same PUT supersedes an unfinished earlier attempt (which gets 410 if still sending).
    With X-Register-Jobid, a job the service does not know is registered first (the fail-safe
    registration of L&B dump importers, without the 404 and the extra call); the answer then
    carries `X-Job-Registered: true`."""
    req = UploadRequest(
        file_class,
        name,
        check_media_type(request.headers.get("content-type"), "the Content-Type header"),
        sha256=request.headers.get("x-content-sha256"),
    )
    registration = None
    for header, value in (
        ("X-Register-Jobid", register_jobid),
        ("X-Register-Owner", register_owner),
    ):
        if value is not None and not value.isascii():
            # Header bytes arrive as Latin-1: other text would be stored garbled.
            raise InvalidInput(f"{header} must be ASCII; register such a job with POST /v1/jobs")
    if register_jobid is not None:
        registration = Registration(services.registrar, register_jobid, register_owner)
    elif register_owner is not None:
        raise InvalidInput("X-Register-Owner needs X-Register-Jobid (the job to register)")
    committed = await services.uploads.put_file(caller, key, req, request.stream(), registration)
    if registration is not None and registration.created:
        response.headers["X-Job-Registered"] = "true"
    return views.committed_out(committed)
