"""The job status the replay builds: public fields (the L&B ``JobStatus``) and bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from jp_primary.plugins.lb.seqcode import SeqCode


class State(IntEnum):
    UNDEFINED = 0
    SUBMITTED = 1
    WAITING = 2
    READY = 3
    SCHEDULED = 4
    RUNNING = 5
    DONE = 6
    CLEARED = 7
    ABORTED = 8
    CANCELLED = 9
    UNKNOWN = 10
    PURGED = 11

    @property
    def label(self) -> str:
        """The L&B spelling: ``Done``, ``Cleared``, ..."""
        return _LABELS[self]  # Enum.name is a slow descriptor, and labels are read often

    @classmethod
    def from_label(cls, text: str | None) -> State | None:
        if text is None:
            return None
        return cls.__members__.get(text.strip().upper())


_LABELS = tuple(state.name.capitalize() for state in State)  # indexed by the state's value


class DoneCode(IntEnum):
    OK = 0
    FAILED = 1
    CANCELLED = 2


JOBTYPES = {
    "SIMPLE": "SIMPLE",
    "DAG": "DAG",
    "PARTITIONABLE": "DAG",
    "PARTITIONED": "DAG",
    "COLLECTION": "COLLECTION",
    "PBS": "PBS",
    "CONDOR": "CONDOR",
}
REGJOB_JOBTYPES = (
    "SIMPLE",
    "DAG",
    "PARTITIONABLE",
    "PARTITIONED",
    "COLLECTION",
    "PBS",
    "CONDOR",
    "CREAM",
    "FILE_TRANSFER_COLLECTION",
    "FILE_TRANSFER",
    "VIRTUAL_MACHINE",
)


@dataclass(slots=True)
class Branch:
    """What one shallow-resubmission branch (one WM counter) was matched to."""

    wm: int
    destination: str | None = None
    ce_node: str | None = None
    jdl: str | None = None


@dataclass(slots=True)
class HistoryEntry:
    state: State
    time_us: int
    reason: str | None
    destination: str | None
    done_code: int | None


@dataclass(slots=True)
class JobStatus:
    """Public status fields, named after the L&B ``JobStatus`` members."""

    state: State = State.UNDEFINED
    jobtype: str | None = None  # None until a RegJob is seen (the original's -1)
    jobid: str | None = None
    owner: str | None = None
    parent_job: str | None = None
    seed: str | None = None
    children_num: int = 0
    children_hist: dict[State, int] = field(default_factory=dict)
    jdl: str | None = None
    matched_jdl: str | None = None
    condor_jdl: str | None = None
    rsl: str | None = None
    destination: str | None = None
    ce_node: str | None = None
    network_server: str | None = None
    ui_host: str | None = None
    condor_id: str | None = None
    globus_id: str | None = None
    reason: str | None = None
    location: str | None = None
    done_code: int | None = None
    exit_code: int | None = None
    resubmitted: bool = False
    cancelling: bool = False
    cancel_reason: str | None = None
    cpu_time: int = 0
    user_tags: dict[str, tuple[str, str, SeqCode]] = field(default_factory=dict)
    state_enter_time_us: int | None = None
    last_update_time_us: int | None = None
    state_enter_times: dict[State, int] = field(default_factory=dict)
    jw_status: str = "UNKNOWN"
    payload_running: bool = False
    possible_destinations: list[str] = field(default_factory=list)
    possible_ce_nodes: list[str] = field(default_factory=list)
    suspended: bool = False
    suspend_reason: str | None = None
    failure_reasons: str | None = None
    remove_from_proxy: bool = False
    sandbox_retrieved: str | None = None
    # The native Condor job type's own fields (condor_status, pids, ...), by L&B-ish name.
    condor: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Bookkeeping:
    """The replay's private memory (the original ``intJobStat`` extension)."""

    last_seq: SeqCode | None = None
    last_cancel_seq: SeqCode | None = None
    branch_tag_seq: SeqCode | None = None
    last_branch_seq: SeqCode | None = None
    deep_resubmit_seq: SeqCode | None = None
    branches: dict[int, Branch] = field(default_factory=dict)
    resubmit_type: str | None = None
