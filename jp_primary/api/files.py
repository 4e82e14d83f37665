from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from jp_primary.api import schemas, views
from jp_primary.api.deps import Caller, Services
from jp_primary.api.errors import Responses, responses
from jp_primary.api.params import FileClass, FileName, JobKey
from jp_primary.api.policies import AnyUserForJobRead
from jp_primary.api.ranges import if_range_holds, none_match, parse_range

router = APIRouter(prefix="/v1/jobs/{key}/files", tags=["files"])

BYTES: Responses = {
    200: {
        "content": {"application/octet-stream": {}, "application/json": {}},
        "description": "The file's bytes, or with link=1 a presigned URL",
    },
    206: {"content": {"application/octet-stream": {}}, "description": "The requested byte range"},
    304: {"description": "Not modified (If-None-Match is * or lists the ETag, W/ or not)"},
}


@router.get("", responses=responses(401, 403, 404, 422))
async def list_files(
    key: JobKey, services: Services, caller: Caller = AnyUserForJobRead
) -> list[schemas.FileOut]:
    """The job's committed files."""
    return [
        views.file_out(f.file, f.uploader) for f in await services.files.list_files(caller, key)
    ]


@router.get("/{file_class}/errors", responses=responses(401, 403, 404, 422))
async def file_errors(
    key: str,
    file_class: str,
    services: Services,
    name: str = "",
    caller: Caller = AnyUserForJobRead,
) -> schemas.FileErrorsOut:
    """The extraction problems of one file: the first ones kept and how many there were."""
    return views.file_errors_out(await services.files.find(caller, key, file_class, name))


@router.get(
    "/{file_class}",
    response_class=Response,
    responses=responses(401, 403, 404, 416, 422, 503, extra=BYTES),
)
async def download(
    key: JobKey,
    file_class: FileClass,
    request: Request,
    services: Services,
    name: FileName = "",
    link: bool = False,
    caller: Caller = AnyUserForJobRead,
) -> Response:
    """A file's bytes (Range and ETag honoured) or, with link=1, a presigned URL as JSON."""
    row = await services.files.find(caller, key, file_class, name)
    if link:
        url, expires = services.files.link(row)
        return Response(
            schemas.LinkOut(url=url, expires_at=expires).model_dump_json(),
            media_type="application/json",
        )
    etag = f'"{row.sha256}"'
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    await services.files.ensure_present(row)
    headers = {"ETag": etag, "Accept-Ranges": "bytes"}
    # A failed If-Range means "send it all": the Range, even an unsatisfiable one, is ignored.
    honoured = if_range_holds(request.headers.get("if-range"), etag)
    wanted = parse_range(request.headers.get("range"), row.size) if honoured else None
    media = row.content_type or "application/octet-stream"
    if wanted is None:
        headers["Content-Length"] = str(row.size)
        return StreamingResponse(
            services.files.read(row, 0, None), headers=headers, media_type=media
        )
    start, length = wanted
    headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{row.size}"
    headers["Content-Length"] = str(length)
    body = services.files.read(row, start, length)
    return StreamingResponse(body, status_code=206, headers=headers, media_type=media)
