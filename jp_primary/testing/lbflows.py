"""Building blocks of generated L&B dumps: one job's log, written component by component.

``JobLog`` keeps the sequence code the job carries through the WMS (``seq``) and the forks of
it that the LogMonitor and the JobWrapper bump on their own, and writes ULM lines for them.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from jp_primary.plugins.lb.jobids import md5_base64
from jp_primary.plugins.lb.seqcode import APP, JSS, LBS, LM, LRMS, NS, UI, WM, format_seqcode
from jp_primary.plugins.lb.ulm import format_line

_SERVERS = ("lb.cesnet.example", "devel15.cnaf.example", "wms01.grid.example")
_CES = (
    "ce01.tier2.example:2119/jobmanager-lcgpbs-cms",
    "ce.farm.example:2119/jobmanager-pbs-short",
    "grid-ce.site.example:2119/jobmanager-lcglsf-grid",
)
_USERS = (
    "/O=CESNET/O=Masaryk University/CN=Test User",
    "/C=IT/O=INFN/OU=Personal Certificate/L=Somewhere/CN=Another Person",
    "/DC=org/DC=example/CN=Grid User 42",
)
_EPOCH_2005 = int(datetime(2005, 1, 1, tzinfo=UTC).timestamp())
_UNQUOTED = frozenset({"DATE", "PROG", "LVL", "DG.PRIORITY", "DG.ARRIVED"})


def random_unique(rng: random.Random) -> str:
    return md5_base64(f"{rng.getrandbits(128):032x}")


class JobLog:
    def __init__(
        self,
        rng: random.Random,
        *,
        jobid: str | None = None,
        parent: str | None = None,
        user: str | None = None,
        old_seqcodes: bool = False,
        arrived: bool = False,
    ) -> None:
        self.rng = rng
        self.jobid = jobid or f"https://{rng.choice(_SERVERS)}:9000/{random_unique(rng)}"
        self.parent = parent
        self.user = user or rng.choice(_USERS)
        self.old_seqcodes, self.arrived = old_seqcodes, arrived
        self.wms = "wms.example.org"
        self.jdl = (
            f'[ Executable = "job.sh"; VirtualOrganisation = "{rng.choice(("cms", "atlas"))}"; ]'
        )
        self.seed: str | None = None
        self.seq = [0] * 9
        self.lm_seq = [0] * 9
        self.wrapper_seq = [0] * 9
        self.really_running_seq: str | None = None
        self.ce = rng.choice(_CES)
        self.node = f"wn{rng.randrange(100, 999)}.{self.ce.split(':')[0].split('.', 1)[1]}"
        self.time_us = (_EPOCH_2005 + rng.randrange(0, 4 * 365 * 86400)) * 1_000_000
        self.lines: list[str] = []

    # -- writing lines ------------------------------------------------------------------------

    def emit(
        self,
        source: str,
        event: str,
        seq: list[int],
        fields: dict[str, str],
        *,
        host: str | None = None,
        delay: float | None = None,
    ) -> str:
        step = delay if delay is not None else self.rng.uniform(0.01, 3.0)
        self.time_us += int(step * 1_000_000)
        code = format_seqcode(tuple(seq), with_lbs=not self.old_seqcodes)
        date = _ulm_date(self.time_us)
        pairs = [
            ("DATE", date),
            ("HOST", host or self.wms),
            ("PROG", "edg-wms"),
            ("LVL", "SYSTEM"),
            ("DG.PRIORITY", "0"),
            ("DG.SOURCE", source),
            ("DG.SRC_INSTANCE", ""),
            ("DG.EVNT", event),
            ("DG.JOBID", self.jobid),
            ("DG.SEQCODE", code),
            ("DG.USER", self.user),
        ]
        pairs += [(f"DG.{event.upper()}.{name.upper()}", value) for name, value in fields.items()]
        if self.arrived:
            pairs.insert(0, ("DG.ARRIVED", _ulm_date(self.time_us + 500_000)))
        self.lines.append(format_line((k, v, k not in _UNQUOTED) for k, v in pairs))
        return code

    def _bump(self, seq: list[int], component: int) -> list[int]:
        seq[component] += 1
        return seq

    # -- flows --------------------------------------------------------------------------------

    def register(self, *, jobtype: str = "SIMPLE", nsubjobs: int = 0) -> None:
        seq = self._bump(self.seq, NS)
        self.seed = random_unique(self.rng) if nsubjobs else None
        fields = {
            "jdl": self.jdl,
            "ns": f"https://{self.wms}:7443/glite_wms_wmproxy_server",
            "parent": self.parent or "",
            "jobtype": jobtype,
            "nsubjobs": str(nsubjobs),
            "seed": self.seed or "",
        }
        self.emit("NetworkServer", "RegJob", seq, fields)
        accepted = {"from": "UserInterface", "from_host": "ui.example.org", "local_jobid": ""}
        self.emit("NetworkServer", "Accepted", self._bump(self.seq, NS), accepted)
        queue = {"queue": "/var/workload_manager/jobdir", "job": self.jdl, "result": "OK"}
        self.emit("NetworkServer", "EnQueued", self._bump(self.seq, NS), queue | {"reason": ""})

    def through_wm(
        self, *, pending: int = 0, match: bool = True, dequeue_source: str = "WorkloadManager"
    ) -> None:
        wm = "WorkloadManager"
        self.emit(dequeue_source, "DeQueued", self._bump(self.seq, WM), {"queue": "jobdir"})
        helper = {"helper_name": "BrokerHelper", "helper_params": "", "src_role": "CALLING"}
        self.emit(wm, "HelperCall", self._bump(self.seq, WM), helper)
        for _ in range(pending):
            reason = "no compatible resources"
            self.emit(wm, "Pending", self._bump(self.seq, WM), {"reason": reason}, delay=60.0)
        if not match:
            return
        # A resubmitted job is matched to another CE, so branches are told apart.
        self.ce = self.rng.choice([ce for ce in _CES if ce != self.ce])
        self.emit(wm, "Match", self._bump(self.seq, WM), {"dest_id": self.ce})
        self.emit(wm, "HelperReturn", self._bump(self.seq, WM), helper | {"retval": self.ce})
        queue = {"queue": "jobcontrol/queue.fl", "job": "", "result": "START", "reason": ""}
        self.emit(wm, "EnQueued", self._bump(self.seq, WM), queue)
        matched = f'[ ce_id = "{self.ce}"; {self.jdl[1:]}'
        self.emit(
            wm, "EnQueued", self._bump(self.seq, WM), queue | {"job": matched, "result": "OK"}
        )

    def submit_to_lrms(self) -> None:
        jc = "JobController"
        self.emit(jc, "DeQueued", self._bump(self.seq, JSS), {"queue": "queue.fl"})
        transfer = {
            "destination": "LogMonitor",
            "dest_host": "localhost",
            "job": f"universe = grid\ngrid_resource = gt2 {self.ce}",
            "result": "OK",
            "reason": "",
        }
        self.emit(jc, "Transfer", self._bump(self.seq, JSS), transfer)
        self.wrapper_seq = list(self.seq)  # handed to the JobWrapper in its arguments
        self.lm_seq = list(self.seq)
        condor_id = str(self.rng.randrange(100000, 999999))
        accepted = {"from": jc, "from_host": "localhost", "local_jobid": condor_id}
        self.emit("LogMonitor", "Accepted", self._bump(self.lm_seq, LM), accepted)
        to_lrms = transfer | {"destination": "LRMS", "dest_host": self.ce, "job": "(queue=cms)"}
        self.emit("LogMonitor", "Transfer", self._bump(self.lm_seq, LM), to_lrms)

    def wrapper_runs(self, *, really_running: bool) -> None:
        node = {"node": self.node}
        self.emit("LRMS", "Running", self._bump(self.wrapper_seq, LRMS), node, host=self.node)
        self.emit("LogMonitor", "Running", self._bump(self.lm_seq, LM), {"node": f"gt2 {self.ce}"})
        self.really_running_seq = None
        if really_running:
            seq = self._bump(self.wrapper_seq, LRMS)
            code = self.emit("LRMS", "ReallyRunning", seq, {"wn_seq": ""}, host=self.node)
            self.really_running_seq = code

    def wrapper_done(self, status: str, *, delay: float | None = None) -> None:
        usage = {"resource": "cpu", "quantity": f"{self.rng.uniform(1, 900):.6f}", "unit": "s"}
        seq = self._bump(self.wrapper_seq, LRMS)
        self.emit("LRMS", "ResourceUsage", seq, usage, host=self.node, delay=delay)
        done = {"status_code": status, "reason": "", "exit_code": "0" if status == "OK" else "1"}
        self.emit("LRMS", "Done", self._bump(self.wrapper_seq, LRMS), done, host=self.node)

    def lm_terminated(self, status: str, *, wn_seq: bool, reason: str | None = None) -> None:
        if wn_seq and self.really_running_seq is not None:
            really = {"wn_seq": self.really_running_seq}
            self.emit("LogMonitor", "ReallyRunning", self._bump(self.lm_seq, LM), really)
        text = reason or "Job terminated successfully"
        done = {"status_code": status, "reason": text, "exit_code": "0" if status == "OK" else "1"}
        self.emit("LogMonitor", "Done", self._bump(self.lm_seq, LM), done)
        self.seq = list(self.lm_seq)

    def lm_resubmit(self, result: str, *, enqueue: bool = True) -> None:
        lm = "LogMonitor"
        resub = {"result": result, "reason": "job failed on the CE", "tag": ""}
        self.emit(lm, "Resubmission", self._bump(self.lm_seq, LM), resub)
        if enqueue:
            queue = {"queue": "/var/workload_manager/jobdir", "job": "", "reason": ""}
            self.emit(lm, "EnQueued", self._bump(self.lm_seq, LM), queue | {"result": "START"})
            self.emit(lm, "EnQueued", self._bump(self.lm_seq, LM), queue | {"result": "OK"})
        self.seq = list(self.lm_seq)

    def wm_resubmission(self) -> None:
        resub = {"result": "WILLRESUB", "reason": "deep resubmission", "tag": ""}
        self.emit("WorkloadManager", "Resubmission", self._bump(self.seq, WM), resub)

    def wm_abort(self, reason: str) -> None:
        self.emit("WorkloadManager", "Abort", self._bump(self.seq, WM), {"reason": reason})

    def cancel(self) -> None:
        request = self._bump(list(self.seq), NS)
        self.emit("NetworkServer", "Cancel", request, {"status_code": "REQ", "reason": "by user"})
        seq = self._bump(request, JSS)
        seq[LM] = self.lm_seq[LM] + 1
        self.emit(
            "LogMonitor", "Cancel", seq, {"status_code": "DONE", "reason": "Aborted by user."}
        )
        done = {"status_code": "CANCELLED", "reason": "Aborted by user.", "exit_code": "0"}
        self.emit("LogMonitor", "Done", self._bump(seq, LM), done)

    def clear(self) -> None:
        seq = self._bump(self._bump(list(self.seq), UI), NS)
        self.emit("NetworkServer", "Clear", seq, {"reason": "USER"}, delay=86400.0)

    def user_tag(self, name: str, value: str) -> None:
        self.lm_seq[APP] += 1  # the user's application logs its tags
        self.emit("Application", "UserTag", self.lm_seq, {"name": name, "value": value})

    def parent_states(self, child_states: list[str]) -> None:
        """CollectionState events of the L&B server as the children progress to the end."""
        count = len(child_states)
        running = _histogram({"Running": count}, count)
        seq = self._bump(self.seq, LBS)
        state = {"state": "Running", "done_code": "0", "histogram": running}
        self.emit("LBServer", "CollectionState", seq, state | {"child": "", "child_event": ""})
        final = "Aborted" if "Aborted" in child_states else "Done"
        counts = {name: child_states.count(name) for name in set(child_states)}
        state = {"state": final, "done_code": "0", "histogram": _histogram(counts, count)}
        last = {"child": self.jobid, "child_event": child_states[-1] if child_states else ""}
        self.emit("LBServer", "CollectionState", self._bump(self.seq, LBS), state | last)


_HISTOGRAM_STATES = (
    "Submitted",
    "Waiting",
    "Ready",
    "Scheduled",
    "Running",
    "Done",
    "Cleared",
    "Aborted",
    "Cancelled",
    "Unknown",
    "Purged",
)


def _histogram(counts: dict[str, int], total: int) -> str:
    unknown = total - sum(counts.values())
    values = counts | {"Unknown": counts.get("Unknown", 0) + unknown}
    return ", ".join(f"{name}={values.get(name, 0)}" for name in _HISTOGRAM_STATES)


def _ulm_date(time_us: int) -> str:
    moment = datetime.fromtimestamp(time_us // 1_000_000, UTC)
    return f"{moment:%Y%m%d%H%M%S}.{time_us % 1_000_000:06d}"
