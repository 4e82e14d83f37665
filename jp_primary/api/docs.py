"""``/docs`` (Swagger UI) and ``/redoc`` served from assets installed with the service.

FastAPI's own pages load their scripts from a public CDN, which leaves them blank on the
offline or firewalled networks where grid services run. The ``fastapi-offline`` distribution
ships the Swagger UI and ReDoc bundles; they are served from here under ``/docs/assets/``, and
the pages name nothing outside this service (no fonts, no favicon from elsewhere).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from jp_primary.api.policies import Anyone

router = APIRouter(include_in_schema=False)

ASSETS = files("fastapi_offline") / "static"
_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
# The pages may load only from this service: ReDoc's sidebar would otherwise fetch its vendor's
# logo from a CDN. Swagger UI starts from an inline script; ReDoc renders in a blob: worker.
CSP = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
}
Asset = Literal["swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"]


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


@router.get("/docs", dependencies=[Anyone])
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI, from the assets installed with the service."""
    root = _root(request)
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/assets/favicon.png",
    )
    page.headers.update(CSP)
    return page


@router.get("/redoc", dependencies=[Anyone])
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc, from the assets installed with the service."""
    root = _root(request)
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}/docs/assets/redoc.standalone.js",
        redoc_favicon_url=f"{root}/docs/assets/favicon.png",
        with_google_fonts=False,
    )
    page.headers.update(CSP)
    return page


@router.get("/docs/assets/{name}", dependencies=[Anyone])
async def asset(name: Asset) -> Response:
    """One Swagger UI or ReDoc asset."""
    data = (ASSETS / name).read_bytes()
    return Response(
        data, media_type=_TYPES[name], headers={"Cache-Control": "public, max-age=86400"}
    )
