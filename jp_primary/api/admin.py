from __future__ import annotations

from fastapi import APIRouter

from jp_primary.api.deps import Caller, Services
from jp_primary.api.errors import responses
from jp_primary.api.policies import Admin
from jp_primary.api.schemas import QuarantineOut

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/quarantine", responses=responses(401, 403))
async def list_quarantine(services: Services, caller: Caller = Admin) -> list[QuarantineOut]:
    """What squatters had stored in jobs that trusted registrations took over (docs/auth.md,
    "Jobid squatting"), kept until ``retain_until``: files (with where their bytes are kept),
    values and tags, unfinished uploads."""
    entries = await services.quarantine.entries()
    return [QuarantineOut.model_validate(e) for e in entries]
