"""The push receiver: records in, deduplicated by (job, name, seq), idempotent by (feed, batch),
retractions, removals, single-valued attributes, the place kept with the records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from jp_primary.auth.identity import Role
from jp_primary.index.apply import apply_batch
from jp_primary.index.wire import FeedRecord
from tests.helpers import ALICE, BOB, new_jobid
from tests.index.conftest import CONFIG, IndexApi

ADMIN = "/CN=index admin"


def value(name: str, text: str, seq: int, origin: str = "FILE") -> dict[str, Any]:
    return {
        "name": name,
        "value": text,
        "origin": origin,
        "origin_detail": "lb",
        "timestamp": "2026-01-01T00:00:00.000000Z",
        "seq": seq,
    }


def stored(index: IndexApi, jobid: str) -> list[tuple[str, str, int]]:
    found = index.query(
        ADMIN,
        Role.ADMIN,
        where=[{"attr": "jp:jobId", "op": "eq", "value": jobid}],
        select=["lb:status", "lb:doneCode", "tag:color", "lb:exitCode"],
    ).json()["jobs"]
    return sorted(
        (v["name"].rpartition(":")[2], v["value"], v["seq"]) for j in found for v in j["values"]
    )


def feed_row(index: IndexApi, name: str) -> dict[str, Any]:
    feeds = index.client.get("/v1/feeds", headers=index.auth(ADMIN, Role.ADMIN)).json()["feeds"]
    return next(f for f in feeds if f["name"] == name)


def test_a_batch_is_applied_once_whatever_the_redeliveries(index: IndexApi) -> None:
    index.subscribed("alpha")
    job = new_jobid()
    records = [{"jobid": job, "owner": ALICE, "values": [value("lb:status", "Running", 5)]}]
    first = index.push("alpha", 1, records)
    assert first.status_code == 200, first.text
    assert first.json() == {"applied_records": 1, "applied_values": 1, "duplicate": False}
    again = index.push("alpha", 1, records)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    # The same values in a later batch (a re-subscription with history) are dropped too.
    more = records + [{"jobid": job, "owner": ALICE, "values": [value("lb:status", "Done", 9)]}]
    assert index.push("alpha", 2, more).status_code == 200
    assert stored(index, job) == [("status", "Done", 9), ("status", "Running", 5)]
    row = feed_row(index, "alpha")
    assert row["last_batch"] == 2
    assert row["last_seq"] == 9


def test_unknown_values_are_skipped_and_single_valued_keep_the_newest(index: IndexApi) -> None:
    index.subscribed("alpha")
    job = new_jobid()
    values = [
        value("lb:doneCode", "FAILED", 3),
        value("lb:doneCode", "OK", 7),
        value("lb:notConfigured", "x", 8),
        value("http://egee.cesnet.cz/en/WSDL/jp-lbtag:color", "red", 10, "USER"),
    ]
    assert index.push("alpha", 1, [{"jobid": job, "owner": ALICE, "values": values}]).json() == {
        "applied_records": 1,
        "applied_values": 3,
        "duplicate": False,
    }
    assert stored(index, job) == [("color", "red", 10), ("doneCode", "OK", 7)]


def test_retractions_and_removals(index: IndexApi) -> None:
    index.subscribed("alpha")
    index.subscribed("beta")
    kept, removed = new_jobid(), new_jobid()
    index.push(
        "alpha",
        1,
        [
            {"jobid": kept, "owner": ALICE, "values": [value("lb:status", "Running", 1)]},
            {"jobid": removed, "owner": BOB, "values": [value("lb:status", "Done", 2)]},
        ],
    )
    # Re-extraction on the primary replaced seq 1 by seq 3.
    index.push(
        "alpha",
        2,
        [
            {
                "jobid": kept,
                "owner": ALICE,
                "values": [value("lb:status", "Done", 3)],
                "retracted": [1],
            }
        ],
    )
    assert stored(index, kept) == [("status", "Done", 3)]
    index.push("alpha", 3, [{"jobid": removed, "owner": BOB, "removed": True}])
    assert stored(index, removed) == []


def test_a_removal_keeps_a_job_another_feed_still_delivers(index: IndexApi) -> None:
    index.subscribed("alpha")
    job = new_jobid()
    records = [{"jobid": job, "owner": ALICE, "values": [value("lb:status", "Done", 2)]}]
    index.push("alpha", 1, records)
    # beta is a pull feed: its pages go through the same code as pushed batches.
    remote = index.subscribed("beta")
    parsed = [FeedRecord.model_validate(r) for r in records]
    index.services.db.run_sync(
        lambda conn: apply_batch(
            conn,
            index.services.applier,
            "beta",
            parsed,
            datetime.now(UTC),
            history_done=True,
            remote_id=remote,
            pull_token="t1",
        )
    )
    index.push("alpha", 2, [{"jobid": job, "owner": ALICE, "removed": True}])
    assert stored(index, job) == [("status", "Done", 2)]
    assert feed_row(index, "beta")["phase"] == "live"


def test_a_batch_of_another_subscription_is_refused_and_retried_later(index: IndexApi) -> None:
    index.subscribed("alpha")
    records = [{"jobid": new_jobid(), "owner": ALICE, "values": [value("lb:status", "Done", 2)]}]
    body = {"feed_id": "an-old-one", "batch": 1, "records": records}
    stale = index.client.post(f"/v1/push/alpha/{index.secret['alpha']}", json=body)
    assert stale.status_code == 409
    wrong = index.client.post("/v1/push/alpha/not-the-secret", json=body)
    assert wrong.status_code == 403
    unknown = index.client.post(f"/v1/push/gamma/{index.secret['alpha']}", json=body)
    assert unknown.status_code == 404
    assert feed_row(index, "alpha")["last_batch"] is None


def test_bad_records_are_a_4xx_never_a_5xx(index: IndexApi) -> None:
    index.subscribed("alpha")
    bad = [{"jobid": "x\x00y", "owner": ALICE, "values": []}]
    assert index.push("alpha", 1, bad).status_code == 422
    no_seq = [
        {"jobid": new_jobid(), "owner": ALICE, "values": [{"name": "lb:status", "value": "x"}]}
    ]
    assert index.push("alpha", 1, no_seq).status_code == 422


def test_a_feed_taken_out_of_the_configuration_takes_its_jobs_along(
    make_index: Callable[..., IndexApi],
) -> None:
    index = make_index()
    index.subscribed("alpha")
    index.subscribed("beta")
    only_beta, both = new_jobid(), new_jobid()
    index.push(
        "alpha", 1, [{"jobid": both, "owner": ALICE, "values": [value("lb:status", "A", 1)]}]
    )
    index.push(
        "beta",
        1,
        [
            {"jobid": both, "owner": ALICE, "values": [value("lb:status", "A", 1)]},
            {"jobid": only_beta, "owner": ALICE, "values": [value("lb:status", "B", 2)]},
        ],
    )
    without_beta = CONFIG[: CONFIG.index('[[feeds]]\nname = "beta"')]
    again = make_index(without_beta)
    assert stored(again, both) == [("status", "A", 1)]
    assert stored(again, only_beta) == []
    assert set(feed_row_names(again)) == {"alpha"}


def feed_row_names(index: IndexApi) -> list[str]:
    feeds = index.client.get("/v1/feeds", headers=index.auth(ADMIN, Role.ADMIN)).json()["feeds"]
    return [f["name"] for f in feeds]
