from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from jp_primary.auth.identity import Identity
from jp_primary.services.container import AppServices


async def _services(request: Request) -> AppServices:  # async: no thread hop per request
    services: AppServices = request.app.state.services
    return services


Services = Annotated[AppServices, Depends(_services)]
Caller = Identity  # the identity a policy dependency returns (never None past the policy)


def base_url(request: Request, services: AppServices) -> str:
    configured = services.settings.server.public_url
    return (configured or str(request.base_url)).rstrip("/")
