"""The one place where errors become HTTP responses ``{"error", "detail"}``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from jp_primary.api.web import render as web_render
from jp_primary.errors import BadRequest, JPError

log = logging.getLogger(__name__)


class ErrorOut(BaseModel):
    error: str
    detail: str


_DESCRIPTIONS = {
    400: "Malformed request (e.g. a body that is not JSON)",
    401: "No identity, or invalid credentials",
    403: "The identity lacks the right",
    404: "No such job, file or upload",
    406: "None of the media types in Accept can be produced (the detail lists those that can)",
    409: "Conflict with what is stored",
    410: "The upload ended or its deadline passed",
    413: "Too large: a file over the size limit, a JSON body over JP_MAX_JSON_BODY, or too many "
    "or too long tags",
    416: "The requested range is outside the file",
    422: "Invalid request",
    503: "A dependency (database or storage) is unavailable; retry after Retry-After",
}


Responses = dict[int | str, dict[str, Any]]


def responses(*codes: int, extra: Responses | None = None) -> Responses:
    """OpenAPI declarations of a route's error responses (plus ``extra`` success variants)."""
    declared: Responses = dict(extra or {})
    for code in codes:
        declared[code] = {"model": ErrorOut, "description": _DESCRIPTIONS[code]}
    return declared


def _body(error: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "detail": detail, **extra}


def error_response(request: Request, exc: JPError) -> Response:
    """A ``JPError`` as its response: JSON, or under /ui/ the web view's page (a sign-in redirect
    for 401). The exception handlers and the request guard (api/guard.py) both answer with it."""
    if web_render.is_ui(request):  # the web view's pages answer with pages
        return web_render.error_page(request, exc.status_code, exc.detail)
    return JSONResponse(_body(exc.error, exc.detail), exc.status_code, headers=exc.headers)


async def _jp_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JPError)
    return error_response(_request, exc)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return await _jp_error(_request, BadRequest("the request body is not valid JSON"))
    readable = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in readable)
    if web_render.is_ui(_request):
        return web_render.error_page(_request, 422, detail)
    return JSONResponse(_body("ValidationError", detail, errors=readable), 422)


def _methods(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    methods: set[str] = set()
    for route in routes:
        match, _child = route.matches(scope)
        if match is Match.NONE:
            continue
        methods |= getattr(route, "methods", None) or set()
        if (included := getattr(route, "original_router", None)) is not None:
            methods |= _methods(included.routes, scope)  # an include_router()d router
    return methods


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (Starlette's own 405 names only the
    methods of the first route whose path matched, e.g. GET but not PUT of one URL)."""
    return sorted(_methods(request.app.router.routes, request.scope))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    name = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
    headers = dict(exc.headers or {})
    detail = str(exc.detail)
    if exc.status_code == 405 and (methods := allowed_methods(request)):
        headers["Allow"] = ", ".join(methods)
        detail = f"this path accepts {headers['Allow']}"
    if web_render.is_ui(request) and exc.status_code == 404:
        return web_render.error_page(request, 404, "there is no such page")
    return JSONResponse(_body(name, detail), exc.status_code, headers=headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse(_body("InternalError", "an unexpected error occurred"), 500)


async def _client_gone(request: Request, _exc: Exception) -> JSONResponse:
    # The client closed the connection mid-request (a cut upload): its own doing, not a server
    # error. Nothing reaches it; the upload's cleanup already ran as the error passed through.
    log.info("client went away during %s %s", request.method, request.url.path)
    return JSONResponse(_body("ClientDisconnect", "the client closed the connection"), 400)


def install(app: FastAPI) -> None:
    app.add_exception_handler(JPError, _jp_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
