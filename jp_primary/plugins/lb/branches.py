"""Resubmission branches: what each WM branch was matched to, and which branch the job ran on.

A shallow resubmission starts a new WM branch (a new WM counter in the sequence code) without a
new deep-resubmission boundary. Destination, CE node and matched JDL are kept per branch, and a
ReallyRunning selects the branch whose data becomes the job's.
"""

from __future__ import annotations

from jp_primary.plugins.lb.events import Event
from jp_primary.plugins.lb.seqcode import WM, SeqCode
from jp_primary.plugins.lb.status import Bookkeeping, Branch
from jp_primary.plugins.lb.steps import Machine


def update_branch(
    book: Bookkeeping,
    seq: SeqCode,
    *,
    destination: str | None = None,
    ce_node: str | None = None,
    jdl: str | None = None,
) -> None:
    branch = book.branches.setdefault(seq[WM], Branch(seq[WM]))
    if destination is not None:
        branch.destination = destination
    if ce_node is not None:
        branch.ce_node = ce_node
    if jdl is not None:
        branch.jdl = jdl


def load_branch(m: Machine) -> None:
    """Take destination/CE/JDL from the really-running branch and the two before it."""
    tag = m.book.branch_tag_seq
    if tag is None or not m.book.branches:
        return
    ordered = sorted(m.book.branches.values(), key=lambda branch: branch.wm)
    index = next((i for i, b in enumerate(ordered) if b.wm == tag[WM]), len(ordered))
    status = m.status
    for branch in ordered[max(0, index - 2) : index + 1]:
        if branch.destination is not None:
            status.destination = branch.destination
        if branch.ce_node is not None:
            status.ce_node = branch.ce_node
        if branch.jdl is not None:
            status.matched_jdl = branch.jdl


def reset_branches(m: Machine, event: Event) -> None:
    """Deep resubmission or abort: forget the branches, set the deep boundary."""
    m.book.resubmit_type = "WILLRESUB"
    m.status.possible_destinations = []
    m.status.possible_ce_nodes = []
    m.book.branches = {}
    m.status.payload_running = False
    m.book.branch_tag_seq = None
    m.book.deep_resubmit_seq = event.seq
