"""HTCondor user logs written as HTCondor writes them (the classic text format), for tests and
benchmarks.

Each event is ``NNN (cluster.proc.subproc) YYYY-MM-DD hh:mm:ss <headline>`` followed by its body
lines and a ``...`` line, as ``condor_event.cpp`` writes it (the bindings' own reader parses
them). Times are written without a zone, in the local time of the writer, as HTCondor does.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import TextIO

SUBMIT_HOST = (
    "<192.168.1.10:9618?addrs=192.168.1.10-9618&alias=submit.example.org&noUDP&sock=schedd_1>"
)
WORKER = "<192.168.1.20:9618?addrs=192.168.1.20-9618&alias=worker1.example.org&noUDP&sock=startd_9>"
WORKER2 = (
    "<192.168.1.21:9618?addrs=192.168.1.21-9618&alias=worker2.example.org&noUDP&sock=startd_3>"
)
_USAGE = (
    "\t\tUsr 0 00:00:01, Sys 0 00:00:00  -  Run Remote Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n"
    "\t\tUsr 0 00:00:01, Sys 0 00:00:00  -  Total Remote Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage\n"
    "\t120  -  Run Bytes Sent By Job\n"
    "\t4000  -  Run Bytes Received By Job\n"
    "\t120  -  Total Bytes Sent By Job\n"
    "\t4000  -  Total Bytes Received By Job\n"
)
_RUN_USAGE = (
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n"
    "\t0  -  Run Bytes Sent By Job\n"
    "\t0  -  Run Bytes Received By Job\n"
)
START = time.mktime((2024, 3, 1, 10, 0, 0, 0, 0, -1))  # local time, as the log is written


def slot(worker: str) -> str:
    return "slot1@" + worker.split("alias=")[1].split("&")[0]


@dataclass
class LogWriter:
    """Appends events of jobs to one log text; ``at`` is seconds after ``START``."""

    parts: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.parts)

    def _event(self, code: int, job: str, at: float, headline: str, body: str = "") -> None:
        cluster, _, proc = job.partition(".")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(START + at))
        head = f"{code:03d} ({int(cluster):03d}.{int(proc):03d}.000) {stamp} {headline}\n"
        self.parts.append(head + body + "...\n")

    def submit(self, job: str, at: float = 0, dag_node: str | None = None) -> None:
        body = f"    DAG Node: {dag_node}\n" if dag_node else ""
        self._event(0, job, at, f"Job submitted from host: {SUBMIT_HOST}", body)

    def execute(self, job: str, at: float, worker: str = WORKER) -> None:
        self._event(1, job, at, f"Job executing on host: {worker}", f"\tSlotName: {slot(worker)}\n")

    def image_size(self, job: str, at: float, size: int = 1000) -> None:
        body = "\t1  -  MemoryUsage of job (MB)\n\t900  -  ResidentSetSize of job (KB)\n"
        self._event(6, job, at, f"Image size of job updated: {size}", body)

    def terminated(self, job: str, at: float, code: int = 0) -> None:
        body = f"\t(1) Normal termination (return value {code})\n" + _USAGE
        self._event(5, job, at, "Job terminated.", body)

    def killed(self, job: str, at: float, signal: int = 9) -> None:
        body = f"\t(0) Abnormal termination (signal {signal})\n\t(0) No core file\n" + _USAGE
        self._event(5, job, at, "Job terminated.", body)

    def aborted(self, job: str, at: float, user: str = "alice") -> None:
        self._event(9, job, at, "Job was aborted.", f"\tvia condor_rm (by user {user})\n")

    def held(self, job: str, at: float, reason: str = "out of disk") -> None:
        body = f"\tError from slot1@worker1.example.org: {reason}\n\tCode 12 Subcode 28\n"
        self._event(12, job, at, "Job was held.", body)

    def released(self, job: str, at: float, user: str = "alice") -> None:
        self._event(13, job, at, "Job was released.", f"\tvia condor_release (by user {user})\n")

    def evicted(self, job: str, at: float) -> None:
        self._event(
            4, job, at, "Job was evicted.", "\t(0) Job was not checkpointed.\n" + _RUN_USAGE
        )

    def evicted_requeued(self, job: str, at: float, code: int = 0) -> None:
        """Evicted after the job ended (``on_exit_remove`` false): terminated and requeued."""
        body = "\t(0) Job terminated and was requeued\n" + _RUN_USAGE
        body += f"\t(1) Normal termination (return value {code})\n"
        self._event(4, job, at, "Job was evicted.", body)

    def executable_error(self, job: str, at: float) -> None:
        self._event(2, job, at, "(1) Job file not executable.")

    def shadow_exception(self, job: str, at: float) -> None:
        body = "\tError from slot1@worker1.example.org: starter died\n"
        body += "\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n"
        self._event(7, job, at, "Shadow exception!", body)

    def disconnected(self, job: str, at: float, worker: str = WORKER) -> None:
        body = (
            "    Socket between submit and execute hosts closed unexpectedly\n"
            f"    Trying to reconnect to {slot(worker)} {worker}\n"
        )
        self._event(22, job, at, "Job disconnected, attempting to reconnect", body)

    def reconnected(self, job: str, at: float, worker: str = WORKER) -> None:
        body = f"    startd address: {worker}\n    starter address: {worker}\n"
        self._event(23, job, at, f"Job reconnected to {slot(worker)}", body)

    def reconnect_failed(self, job: str, at: float, worker: str = WORKER) -> None:
        body = (
            "    Job disconnected too long: JobLeaseDuration (20 seconds) expired\n"
            f"    Can not reconnect to {slot(worker)}, rescheduling job\n"
        )
        self._event(24, job, at, "Job reconnection failed", body)

    def suspended(self, job: str, at: float) -> None:
        body = "\tNumber of processes actually suspended: 1\n"
        self._event(10, job, at, "Job was suspended.", body)

    def unsuspended(self, job: str, at: float) -> None:
        self._event(11, job, at, "Job was unsuspended.")

    def grid_submit(self, job: str, at: float, resource: str = "batch slurm") -> None:
        body = f"    GridResource: {resource}\n    GridJobId: {resource} 12345\n"
        self._event(27, job, at, "Job submitted to grid resource", body)

    def grid_resource_down(self, job: str, at: float, resource: str = "batch slurm") -> None:
        self._event(26, job, at, "Detected Down Grid Resource", f"    GridResource: {resource}\n")

    def globus_submit(self, job: str, at: float) -> None:
        body = (
            "    RM-Contact: ce.example.org/jobmanager-pbs\n"
            "    JM-Contact: https://ce.example.org:1234/5678/\n    Can-Restart-JM: 1\n"
        )
        self._event(17, job, at, "Job submitted to Globus", body)

    def globus_submit_failed(self, job: str, at: float) -> None:
        body = "    Reason: 7 authentication failed\n"
        self._event(18, job, at, "Globus job submission failed!", body)

    def globus_resource_down(self, job: str, at: float) -> None:
        body = "    RM-Contact: ce.example.org/jobmanager-pbs\n"
        self._event(20, job, at, "Detected Down Globus Resource", body)


def write_workload(stream: TextIO, events: int, per_job: int = 10) -> int:
    """Write a log of exactly ``events`` events over jobs of ``per_job`` events (benchmark data):
    submit, execute, an eviction and a second execution, image size updates, termination.
    Written job by job, so a log of any size costs no memory. Returns the bytes written."""
    written = made = 0
    cluster = 1
    while made < events:
        w = LogWriter()
        job, at, left = f"{cluster}.0", float(cluster), min(per_job, events - made)
        for index in range(left):
            t = at + index
            if index == left - 1 and left > 1:
                w.terminated(job, t, code=cluster % 3)
            elif index == 0:
                w.submit(job, t)
            elif index in (1, 3):
                w.execute(job, t, WORKER if index == 1 else WORKER2)
            elif index == 2:
                w.evicted(job, t)
            else:
                w.image_size(job, t, 1000 + index)
        text = w.text()
        stream.write(text)
        written += len(text)
        made += left
        cluster += 1
    return written


def workload(events: int, per_job: int = 10) -> str:
    """``write_workload`` into a string."""
    buffer = io.StringIO()
    write_workload(buffer, events, per_job)
    return buffer.getvalue()


def write_long_job(stream: TextIO, events: int) -> int:
    """One job of exactly ``events`` events (at least 2): submitted, then cycles of execution,
    image size update, eviction, hold and release, then terminated. The worst case for the
    memory a single job may take. Returns the bytes written."""
    written = 0
    w = LogWriter()
    w.submit("1.0", 0)
    cycle = ("execute", "image_size", "evicted", "held", "released")
    for index in range(events - 2):
        getattr(w, cycle[index % len(cycle)])("1.0", 1 + index)
        if len(w.parts) >= 1000:
            text = w.text()
            stream.write(text)
            written += len(text)
            w.parts.clear()
    w.terminated("1.0", events)
    text = w.text()
    stream.write(text)
    return written + len(text)
