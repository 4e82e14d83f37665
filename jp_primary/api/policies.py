"""Who may enter each route. Every route depends on exactly one of these (a test walks the app
and fails on any route without one).

A route policy checks only what can be checked before the job is loaded: anonymous access, an
authenticated identity, a role. Job-level rules (the job's owner vs. others, the identity that
started an upload) are checked by the services once the job or upload is loaded, in the same
transaction that uses it (``services.access``); checking them here too would load the job twice
and put a database session into ``api/``. The policies are named for what they check:
``AnyUserForJobRead``, ``AnyUserForJobWrite`` and ``AnyUserForUpload`` admit any authenticated
identity, and their ``who`` says which job-level rule the service applies next (docs/auth.md,
"Route policies").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request

from jp_primary.api.guard import IDENTITY_KEY
from jp_primary.auth.authenticate import credentials_from_scope
from jp_primary.auth.identity import Identity, Role
from jp_primary.errors import Forbidden, Unauthenticated


@dataclass(frozen=True)
class RoutePolicy:
    who: str  # who finally passes, as API.md says it (the job-level part checked by services)
    anonymous: bool = False
    roles: frozenset[Role] | None = None  # None: any authenticated identity passes the route


def _dependency(policy: RoutePolicy) -> Callable[[Request], Awaitable[Identity | None]]:
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


ANYONE = RoutePolicy("anyone", anonymous=True)
ANY_USER = RoutePolicy("any authenticated identity")
# Any authenticated identity enters; the services then apply the job-level rule in ``who``.
JOB_READERS = RoutePolicy("any identity; the service admits the job's owner, trusted, admins")
JOB_WRITERS = RoutePolicy("any identity; the service admits the job's owner, trusted services")
UPLOAD_STARTER = RoutePolicy("any identity; the service admits the one that started the upload")
# Batch queries: the service restricts owners to their own jobs; admin, indexer, trusted see all.
QUERIERS = RoutePolicy("any identity; owners see their own jobs, admin/indexer/trusted all jobs")
TRUSTED = RoutePolicy("trusted services", roles=frozenset({Role.TRUSTED}))
ADMINS = RoutePolicy("admins", roles=frozenset({Role.ADMIN}))
# Feeds: index servers subscribe; the service admits a feed's own subscriber (admins: all).
INDEXERS = RoutePolicy(
    "indexers, admins; the service admits a feed's subscriber (admins: every feed)",
    roles=frozenset({Role.INDEXER, Role.ADMIN}),
)

Anyone = Depends(_dependency(ANYONE))
AnyUser = Depends(_dependency(ANY_USER))
AnyUserForJobRead = Depends(_dependency(JOB_READERS))
AnyUserForJobWrite = Depends(_dependency(JOB_WRITERS))
AnyUserForUpload = Depends(_dependency(UPLOAD_STARTER))
AnyUserForQuery = Depends(_dependency(QUERIERS))
Trusted = Depends(_dependency(TRUSTED))
Admin = Depends(_dependency(ADMINS))
Indexer = Depends(_dependency(INDEXERS))
