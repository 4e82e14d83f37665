"""Talking to one primary storage's feed routes (API.md: POST/GET/DELETE /v1/feeds...).

Every HTTP call the index server makes goes through here, so moving onto the shared client
library changes this module only.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from jp_primary.index.config import FeedSection
from jp_primary.index.wire import ChangesPage


class PrimaryError(Exception):
    """A call to a primary failed; ``gone`` when the subscription no longer exists there."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def gone(self) -> bool:
        return self.status in (404, 410)


@dataclass(frozen=True)
class Subscription:
    feed_id: str
    expires_at: datetime | None
    mode: str


def _verify(feed: FeedSection) -> ssl.SSLContext | bool:
    if feed.ca_file is None and feed.ca_dir is None:
        return True
    context = ssl.create_default_context(cafile=feed.ca_file, capath=feed.ca_dir)
    if feed.cert is not None and feed.key is not None:
        context.load_cert_chain(feed.cert, feed.key)
    return context


def _headers(feed: FeedSection) -> dict[str, str]:
    token = feed.token
    if feed.token_file is not None:
        token = Path(feed.token_file).read_text(encoding="utf-8").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _expiry(body: dict[str, Any]) -> datetime | None:
    value = body.get("expires_at")
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class PrimaryClient:
    def __init__(self, feed: FeedSection, timeout: float = 30.0) -> None:
        verify = _verify(feed)
        cert = (feed.cert, feed.key) if feed.cert and feed.key and verify is True else None
        self._client = httpx.AsyncClient(
            base_url=feed.url,
            headers=_headers(feed),
            verify=verify,
            cert=cert,
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise PrimaryError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise PrimaryError(
                f"{method} {path}: {response.status_code} {str(detail)[:500]}",
                response.status_code,
            )
        return response

    async def subscribe(self, request: dict[str, Any]) -> Subscription:
        body = (await self._call("POST", "/v1/feeds", json=request)).json()
        return Subscription(str(body["feed_id"]), _expiry(body), str(body.get("mode", "")))

    async def refresh(self, feed_id: str) -> datetime | None:
        return _expiry((await self._call("POST", f"/v1/feeds/{feed_id}/refresh")).json())

    async def status(self, feed_id: str) -> dict[str, Any]:
        body: dict[str, Any] = (await self._call("GET", f"/v1/feeds/{feed_id}")).json()
        return body

    async def cancel(self, feed_id: str) -> None:
        await self._call("DELETE", f"/v1/feeds/{feed_id}")

    async def changes(
        self, feed_id: str, since: str | None, limit: int, wait: float
    ) -> ChangesPage:
        params: dict[str, Any] = {"limit": limit, "wait": wait}
        if since is not None:
            params["since"] = since
        response = await self._call(
            "GET", f"/v1/feeds/{feed_id}/changes", params=params, timeout=wait + 30.0
        )
        return ChangesPage.model_validate(response.json())
