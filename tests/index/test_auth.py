"""The index server's authentication is the primary's stack, configured from its file: here the
role file (`auth.policy_file`) makes a plain token subject an admin of the index."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers import ALICE, BOB, new_jobid
from tests.index.conftest import CONFIG, IndexApi


def test_the_policy_file_gives_roles(make_index: Callable[..., IndexApi], tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[admin]\nsubjects = ["operator"]\n')
    index = make_index(CONFIG + f'\n[auth]\npolicy_file = "{policy}"\n')
    index.subscribed("alpha")
    values = [{"name": "lb:status", "value": "Done", "origin": "FILE", "seq": 1}]
    jobs = [new_jobid(), new_jobid()]
    records = [
        {"jobid": jobs[0], "owner": ALICE, "values": values},
        {"jobid": jobs[1], "owner": BOB, "values": [{**values[0], "seq": 2}]},
    ]
    assert index.push("alpha", 1, records).status_code == 200
    where = [{"attr": "lb:status", "op": "eq", "value": "Done"}]
    seen = {j["jobid"] for j in index.query("operator", where=where).json()["jobs"]}
    assert seen == set(jobs)
    assert index.client.get("/v1/feeds", headers=index.auth("operator")).status_code == 200
    # Without the role: own jobs only, and no feed status.
    assert {j["jobid"] for j in index.query(ALICE, where=where).json()["jobs"]} == {jobs[0]}
    assert index.client.get("/v1/feeds", headers=index.auth(ALICE)).status_code == 403
    assert index.client.get("/v1/feeds").status_code == 401
