from __future__ import annotations

from fastapi import APIRouter

from jp_primary.api.deps import Caller
from jp_primary.api.errors import responses
from jp_primary.api.policies import AnyUser
from jp_primary.api.schemas import WhoAmIOut

router = APIRouter(prefix="/v1", tags=["identity"])


@router.get("/whoami", responses=responses(401))
async def whoami(caller: Caller = AnyUser) -> WhoAmIOut:
    """Who the service takes the caller for: subject, roles, groups or VOMS FQANs, and how the
    caller was authenticated. Nothing secret: the credential itself is never echoed."""
    return WhoAmIOut(
        subject=caller.subject,
        roles=sorted(r.value for r in caller.roles),
        groups=sorted(caller.groups),
        fqans=list(caller.fqans),
        authenticated_by=caller.method,
        issuer=caller.issuer,
    )
