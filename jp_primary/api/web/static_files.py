"""The web view's stylesheet, from the package (no CDN, nothing fetched at run time)."""

from __future__ import annotations

from importlib.resources import files
from typing import Literal

from fastapi import APIRouter, Response

from jp_primary.api.policies import Anyone

router = APIRouter(prefix="/ui/static", include_in_schema=False)
STATIC = files("jp_primary.api.web") / "static"


@router.get("/{name}", dependencies=[Anyone])
async def static(name: Literal["ui.css"]) -> Response:
    """The web view's stylesheet."""
    return Response(
        (STATIC / name).read_bytes(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
