"""Who may call each route. Every route depends on exactly one of these (a test walks the app
and fails on any route without one). Job-level rules (owner vs. others) are checked by the
services once the job is loaded; the policy here is the route's entry condition."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request

from jp_primary.api.guard import IDENTITY_KEY
from jp_primary.auth.authenticate import credentials_from_scope
from jp_primary.auth.identity import Identity, Role
from jp_primary.errors import Forbidden, Unauthenticated


@dataclass(frozen=True)
class Policy:
    who: str  # as API.md says it; shown in the OpenAPI description
    anonymous: bool = False
    roles: frozenset[Role] | None = None  # None: any authenticated identity passes the route


def _dependency(policy: Policy) -> Callable[[Request], Awaitable[Identity | None]]:
    async def caller(request: Request) -> Identity | None:
        if policy.anonymous:
            return None
        identity = request.scope.get(IDENTITY_KEY)  # resolved before the body (api/guard.py)
        if identity is None:
            credentials = credentials_from_scope(request.scope)
            identity = request.app.state.services.authenticator.authenticate(credentials)
            request.scope[IDENTITY_KEY] = identity  # for the access log
        if identity is None:
            raise Unauthenticated(
                "authentication required: a bearer token, a client certificate or a trusted "
                "front end's verified DN"
            )
        if policy.roles is not None and not (identity.roles & policy.roles):
            needed = " or ".join(sorted(r.value for r in policy.roles))
            raise Forbidden(f"this operation needs the role {needed}")
        return identity

    caller.jp_policy = policy  # type: ignore[attr-defined]  # read by the route-policy test
    return caller


ANYONE = Policy("anyone", anonymous=True)
ANY_USER = Policy("any authenticated identity")
JOB_READERS = Policy("the job's owner, trusted services, admins")
JOB_WRITERS = Policy("the job's owner, trusted services")
UPLOAD_STARTER = Policy("the identity that started the upload")
TRUSTED = Policy("trusted services", roles=frozenset({Role.TRUSTED}))
ADMINS = Policy("admins", roles=frozenset({Role.ADMIN}))

Anyone = Depends(_dependency(ANYONE))
AnyUser = Depends(_dependency(ANY_USER))
JobReader = Depends(_dependency(JOB_READERS))
JobWriter = Depends(_dependency(JOB_WRITERS))
UploadStarter = Depends(_dependency(UPLOAD_STARTER))
Trusted = Depends(_dependency(TRUSTED))
Admin = Depends(_dependency(ADMINS))
