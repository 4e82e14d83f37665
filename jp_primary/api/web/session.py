"""The web view's cookies: the signed-in token, and the CSRF token of its forms.

CSRF: a random value kept in an HttpOnly, SameSite=Strict cookie must come back in the form's
hidden ``csrf`` field (double submit). A foreign page can make a browser post a form, but it can
neither read the cookie nor, with SameSite=Strict, have the browser send it along.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qsl

from fastapi import Request, Response

from jp_primary.auth.authenticate import UI_PATH, UI_TOKEN_COOKIE, cookie_value
from jp_primary.errors import BadRequest, Forbidden

CSRF_COOKIE = "jp_ui_csrf"
CSRF_FIELD = "csrf"
TOKEN_DAYS = 1  # the browser forgets the token after this even if it is valid longer


def secure(request: Request) -> bool:
    """Over TLS, or behind a TLS-terminating front end (``JP_PUBLIC_URL`` is https)."""
    public = request.app.state.services.settings.server.public_url or ""
    return request.url.scheme == "https" or str(public).startswith("https://")


def _set(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=UI_PATH,
        secure=secure(request),
        httponly=True,
        samesite="strict",
    )


def csrf_token(request: Request) -> tuple[str, bool]:
    """The request's CSRF value and whether it is new (then the response must set it)."""
    known = cookie_value(request.headers.get("cookie", ""), CSRF_COOKIE)
    if known:
        return known, False
    return secrets.token_urlsafe(24), True


def set_csrf(request: Request, response: Response, token: str) -> None:
    _set(request, response, CSRF_COOKIE, token, None)


def sign_in(request: Request, response: Response, token: str) -> None:
    _set(request, response, UI_TOKEN_COOKIE, token, TOKEN_DAYS * 86400)


def sign_out(request: Request, response: Response) -> None:
    response.delete_cookie(
        UI_TOKEN_COOKIE, path=UI_PATH, secure=secure(request), httponly=True, samesite="strict"
    )


async def form(request: Request) -> dict[str, str]:
    """The fields of a posted form, after checking its CSRF token (403 when it does not match)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        raise BadRequest("send this form as application/x-www-form-urlencoded")
    try:
        text = (await request.body()).decode()
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8") from None
    fields = dict(parse_qsl(text, keep_blank_values=True))
    expected = cookie_value(request.headers.get("cookie", ""), CSRF_COOKIE) or ""
    sent = fields.pop(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden(
            "this form was not sent from this site's page, or it expired; reload the page and "
            "send it again (the page needs cookies)"
        )
    return fields
