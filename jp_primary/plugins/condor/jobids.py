"""The jobid scheme of HTCondor jobs registered without an L&B jobid (docs/condor.md).

``condor://<schedd host>[:port]/<cluster>.<proc>``: the host of the schedd that queued the job
(the submit host of its user log) and the job's id there. A GlobalJobId
``<schedd>#<cluster>.<proc>#<qdate>`` is written as ``condor://<schedd>/<cluster>.<proc>``.
"""

from __future__ import annotations

import re

_CONDOR_JOBID = re.compile(
    r"condor://([A-Za-z0-9.-]+)(?::[0-9]{1,5})?/([0-9]{1,10})\.([0-9]{1,10})"
)


def parse_condor_jobid(jobid: str) -> tuple[str, int, int] | None:
    """``(schedd host, cluster, proc)`` of a ``condor://`` jobid, None if it is not one."""
    match = _CONDOR_JOBID.fullmatch(jobid)
    if match is None:
        return None
    host, cluster, proc = match.groups()
    return host.lower(), int(cluster), int(proc)


def cluster_proc(jobid: str | None) -> str | None:
    """The ``cluster.proc`` a ``condor://`` jobid names (None for other jobids)."""
    parsed = parse_condor_jobid(jobid or "")
    return None if parsed is None else f"{parsed[1]}.{parsed[2]}"


def condor_key(host: str, cluster: int, proc: int) -> str:
    """The job's key (``/v1/jobs/{key}``): the schedd joins the id, as ``cluster.proc`` alone
    repeats across schedds. ``_`` does not occur in host names, so the key is unambiguous."""
    return f"{host}_{cluster}.{proc}"
