"""Rendering the web view's pages (Jinja2 templates shipped in this package) and its errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from jp_primary.api.web import session
from jp_primary.auth.authenticate import (
    IDENTITY_KEY,
    UI_PATH,
    UI_TOKEN_COOKIE,
    credentials_from_scope,
)
from jp_primary.auth.identity import Identity
from jp_primary.errors import JPError

ENV = Environment(
    loader=PackageLoader("jp_primary.api.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Everything a page uses comes from this service; nothing runs inline.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    406: "Not acceptable",
    413: "Too large",
    422: "Invalid input",
    503: "Temporarily unavailable",
}


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "—"


def size(count: int) -> str:
    amount = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{int(amount)} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{count} bytes"


ENV.filters["when"] = when
ENV.filters["size"] = size
ENV.filters["q"] = lambda text: quote(str(text), safe="")


def identity_of(request: Request) -> Identity | None:
    """Who the page is for, if anyone (pages open to anyone show the sign-in state too)."""
    known = request.scope.get(IDENTITY_KEY)
    if isinstance(known, Identity):
        return known
    try:
        found = request.app.state.services.authenticator.authenticate(
            credentials_from_scope(request.scope)
        )
    except JPError:
        return None
    return found if isinstance(found, Identity) else None


def page(request: Request, template: str, status: int = 200, /, **context: Any) -> HTMLResponse:
    token, new = session.csrf_token(request)
    identity = identity_of(request)
    html = ENV.get_template(template).render(
        csrf=token,
        identity=identity,
        token_cookie=UI_TOKEN_COOKIE in request.headers.get("cookie", ""),
        certificate=bool((request.scope.get("extensions") or {}).get("tls")),
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(html, status, headers=HEADERS)
    if new:
        session.set_csrf(request, response, token)
    return response


def is_ui(request: Request) -> bool:
    return request.url.path.startswith(UI_PATH) or request.url.path == UI_PATH.rstrip("/")


def _posted_from(request: Request) -> str:
    """The web view's page a form came from (its Referer's path), else the start page."""
    path = urlsplit(request.headers.get("referer", "")).path
    return path if path.startswith(UI_PATH) else UI_PATH


def error_page(request: Request, status: int, detail: str) -> Response:
    """An error of a page: a sign-in redirect for 401, else a page saying what to do. A form
    posted without a valid session (its cookie expired while the page was open) comes back to
    the page it was posted from once signed in (the sign-in checks ``next`` again)."""
    if status == 401:
        back = request.url.path if request.method == "GET" else _posted_from(request)
        target = f"{UI_PATH}sign-in?next={quote(back, safe='/')}"
        response: Response = RedirectResponse(target, 303)
        if UI_TOKEN_COOKIE in request.headers.get("cookie", ""):
            session.sign_out(request, response)  # expired or revoked: forget it
        return response
    return page(
        request, "error.html", status, code=status, title=TITLES.get(status, "Error"), detail=detail
    )
