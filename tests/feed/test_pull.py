"""Feeds in pull mode through the API (SQLite and PostgreSQL): subscription checks, history,
continuous records, tokens, expiry, tombstones."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from jp_primary.auth.identity import Role
from tests.helpers import ALICE, BOB, Api, register_job

INDEXER = "/DC=org/DC=example/CN=index.example.org"
OTHER_INDEXER = "/DC=org/DC=example/CN=index2.example.org"


def subscribe(api: Api, subject: str = INDEXER, **body: Any) -> Any:
    payload: dict[str, Any] = {"attributes": ["tag:color"], "history": True, "continuous": True}
    payload.update(body)
    return api.client.post("/v1/feeds", json=payload, headers=api.auth(subject, Role.INDEXER))


def pull(api: Api, feed_id: str, since: str | None = None, **params: Any) -> Any:
    query = dict(params)
    if since is not None:
        query["since"] = since
    return api.client.get(
        f"/v1/feeds/{feed_id}/changes", params=query, headers=api.auth(INDEXER, Role.INDEXER)
    )


def tag(api: Api, key: str, name: str, value: str, owner: str = ALICE) -> list[int]:
    answer = api.client.post(
        f"/v1/jobs/{key}/tags", json={"name": name, "value": value}, headers=api.auth(owner)
    )
    assert answer.status_code == 201, answer.text
    return [t["seq"] for t in answer.json()]


def drain(api: Api, feed_id: str, since: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Every record up to now, and the token after them."""
    records: list[dict[str, Any]] = []
    while True:
        answer = pull(api, feed_id, since)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        records += page["records"]
        if page["next"] == since:
            return records, page["next"]
        since = page["next"]


def created(answer: Any) -> str:
    assert answer.status_code == 201, answer.text
    return str(answer.json()["feed_id"])


def test_subscription_needs_history_or_continuous(api: Api) -> None:
    answer = subscribe(api, history=False, continuous=False)
    assert answer.status_code == 422
    assert "history" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("condition", "said"),
    [
        ({"attr": "tag:color", "op": "like", "value": "x"}, "unknown operator"),
        ({"attr": "nosuch:color", "op": "eq", "value": "x"}, "unknown alias"),
        ({"attr": "system:regtime", "op": "lt", "value": "yesterday"}, "conditions[0]"),
    ],
)
def test_bad_conditions_are_422_naming_them(api: Api, condition: dict[str, Any], said: str) -> None:
    answer = subscribe(api, conditions=[condition])
    assert answer.status_code == 422, answer.text
    assert said in answer.json()["detail"]


def test_only_indexers_and_admins_subscribe(api: Api) -> None:
    payload = {"attributes": ["tag:color"], "history": True, "continuous": False}
    plain = api.client.post("/v1/feeds", json=payload, headers=api.auth(ALICE))
    assert plain.status_code == 403
    admin = api.client.post("/v1/feeds", json=payload, headers=api.auth(BOB, Role.ADMIN))
    assert admin.status_code == 201


def test_history_then_continuous_full_record_then_new_values(api: Api) -> None:
    # The database is shared by the session's tests: a colour no other test uses.
    colour = f"red-{secrets.token_hex(4)}"
    red, blue = register_job(api), register_job(api)
    tag(api, red, "color", colour)
    tag(api, blue, "color", "blue")
    feed = created(
        subscribe(
            api,
            attributes=["tag:color", "tag:size", "system:owner"],
            conditions=[{"attr": "tag:color", "op": "eq", "value": colour}],
        )
    )
    first = pull(api, feed).json()
    assert first["history_done"] is True
    assert [r["jobid"].rsplit("/", 1)[1] for r in first["records"]] == [red]
    names = {v["name"].rsplit(":", 1)[1]: v["value"] for v in first["records"][0]["values"]}
    assert names == {"color": colour, "owner": ALICE}

    later = register_job(api)
    tag(api, later, "size", "L")  # not matching yet: nothing
    tag(api, later, "color", colour)  # matches now: its full record, size included
    tag(api, red, "size", "S")  # sent before: only the new value
    records, _ = drain(api, feed, first["next"])
    by_key = {r["jobid"].rsplit("/", 1)[1]: r for r in records}
    assert set(by_key) == {later, red}
    full = sorted(v["value"] for v in by_key[later]["values"])
    assert full == sorted(["L", colour, ALICE])
    assert [v["value"] for v in by_key[red]["values"]] == ["S"]
    seqs = [v["seq"] for r in records for v in r["values"]]
    assert seqs == sorted(seqs) or len(records) == 2


def test_zero_match_history_still_says_history_done(api: Api) -> None:
    register_job(api)
    feed = created(
        subscribe(
            api,
            continuous=False,
            conditions=[{"attr": "tag:color", "op": "eq", "value": "no-such-colour"}],
        )
    )
    page = pull(api, feed).json()
    assert page == {"records": [], "next": page["next"], "history_done": True}
    state = api.client.get(f"/v1/feeds/{feed}", headers=api.auth(INDEXER, Role.INDEXER)).json()
    assert state["phase"] == "history"  # the marker is not acknowledged yet
    pull(api, feed, page["next"])
    state = api.client.get(f"/v1/feeds/{feed}", headers=api.auth(INDEXER, Role.INDEXER)).json()
    assert state["phase"] == "done"


def test_the_same_token_gives_the_same_records(api: Api) -> None:
    for _ in range(3):
        tag(api, register_job(api), "color", "green")
    feed = created(subscribe(api, continuous=False, conditions=[]))
    once, twice = pull(api, feed, limit=2).json(), pull(api, feed, limit=2).json()
    assert once == twice
    following = pull(api, feed, once["next"]).json()
    assert pull(api, feed, once["next"]).json() == following


def test_malformed_token_is_400_and_push_feed_is_409(api: Api) -> None:
    feed = created(subscribe(api))
    assert pull(api, feed, "garbage").status_code == 400
    assert pull(api, feed, "b1.0000000000000000").status_code == 400
    push = created(subscribe(api, destination="http://127.0.0.1:9/receive"))
    assert pull(api, push).status_code == 409


def test_expired_and_purged_feeds_answer_410(api: Api) -> None:
    import time
    from datetime import timedelta

    feed = created(subscribe(api, ttl_seconds=1))
    token = pull(api, feed).json()["next"]
    time.sleep(1.2)
    assert pull(api, feed, token).status_code == 410
    headers = api.auth(INDEXER, Role.INDEXER)
    assert api.client.get(f"/v1/feeds/{feed}", headers=headers).json()["phase"] == "expired"
    assert api.client.post(f"/v1/feeds/{feed}/refresh", headers=headers).status_code == 410
    engine = api.client.app.state.services.feeds.engine  # type: ignore[attr-defined]
    from jp_primary.feed.engine import utcnow

    purged = api.client.portal.call(engine.purge, utcnow(), timedelta(0))  # type: ignore[union-attr]
    assert purged.feeds >= 1
    assert pull(api, feed, token).status_code == 410
    assert api.client.get(f"/v1/feeds/{feed}", headers=headers).status_code == 404


def test_refresh_list_cancel_and_privacy(api: Api) -> None:
    feed = created(subscribe(api, ttl_seconds=60))
    mine = api.auth(INDEXER, Role.INDEXER)
    other = api.auth(OTHER_INDEXER, Role.INDEXER)
    before = api.client.get(f"/v1/feeds/{feed}", headers=mine).json()["expires_at"]
    import time

    time.sleep(0.01)
    refreshed = api.client.post(f"/v1/feeds/{feed}/refresh", headers=mine)
    assert refreshed.status_code == 200
    assert refreshed.json()["expires_at"] > before
    assert feed in [f["feed_id"] for f in api.client.get("/v1/feeds", headers=mine).json()]
    assert feed not in [f["feed_id"] for f in api.client.get("/v1/feeds", headers=other).json()]
    assert api.client.get(f"/v1/feeds/{feed}", headers=other).status_code == 404
    assert pull(api, feed).status_code == 200
    admin = api.auth(BOB, Role.ADMIN)
    assert api.client.get(f"/v1/feeds/{feed}", headers=admin).status_code == 200
    assert api.client.delete(f"/v1/feeds/{feed}", headers=mine).status_code == 204
    assert api.client.get(f"/v1/feeds/{feed}", headers=mine).status_code == 404


def squatted_job_feed(api: Api) -> tuple[str, str, str, str]:
    """A job registered by a squatter first, and a feed of that squatter's jobs: ``(jobid,
    squatter, job key, feed id)``."""
    from tests.helpers import new_jobid

    jobid = new_jobid()
    # A squatter of its own: the database is shared by the session's tests.
    squatter = f"/DC=org/DC=example/CN=squatter-{secrets.token_hex(4)}"
    key = register_job(api, squatter, jobid=jobid)  # the squatter takes the jobid first
    owner = "system:owner"
    feed = created(
        subscribe(
            api,
            attributes=[owner],
            conditions=[{"attr": owner, "op": "eq", "value": squatter}],
            notify_removed=True,
        )
    )
    return jobid, squatter, key, feed


def test_a_job_that_stops_matching_is_removed_with_its_values_retracted(api: Api) -> None:
    from tests.helpers import LB_HOST, post_job

    jobid, squatter, key, feed = squatted_job_feed(api)
    tag(api, key, "color", "red", owner=squatter)  # not a requested attribute: nothing to send
    history, token = drain(api, feed)
    assert [r["jobid"] for r in history] == [jobid]
    before = api.client.get(f"/v1/jobs/{key}/attributes", headers=api.auth(squatter)).json()
    old_seqs = sorted(v["seq"] for v in before["values"])
    # L&B registers the jobid for Alice: the takeover removes the squatter's values.
    taken = post_job(api, jobid, LB_HOST, ALICE, Role.TRUSTED)
    assert taken.status_code == 201, taken.text
    records, _ = drain(api, feed, token)
    assert records == [
        {
            "jobid": jobid,
            "owner": ALICE,
            "values": [],
            "retracted": old_seqs,
            "removed": True,
        }
    ]


JDL = 'Executable = "/bin/hostname";\nArguments = "-f";\n'


def test_reextraction_delivers_tombstones_and_the_new_values(api: Api) -> None:
    key = register_job(api)
    stored = api.client.put(
        f"/v1/jobs/{key}/files/jdl", content=JDL.encode(), headers=api.auth(ALICE)
    )
    assert stored.status_code == 201, stored.text
    feed = created(subscribe(api, history=True, attributes=["jdl:Executable", "jdl:Arguments"]))
    history, token = drain(api, feed)
    (record,) = [r for r in history if r["jobid"].endswith(key)]
    old = sorted(v["seq"] for v in record["values"])
    assert len(old) == 2

    services = api.client.app.state.services  # type: ignore[attr-defined]
    report = api.client.portal.call(services.reextract.reextract, None, key)  # type: ignore[union-attr]
    assert report.files == 1
    records, _ = drain(api, feed, token)
    assert len(records) == 1
    assert records[0]["retracted"] == old
    new = records[0]["values"]
    assert sorted(v["value"] for v in new) == ["-f", "/bin/hostname"]
    assert min(v["seq"] for v in new) > max(old)


def test_batches_hold_at_most_the_limit_and_history_streams_in_order(api: Api) -> None:
    keys = [register_job(api) for _ in range(7)]
    feed = created(subscribe(api, continuous=False, attributes=["system:jobId"]))
    seen: list[str] = []
    since = None
    pages = 0
    while True:
        page = pull(api, feed, since, limit=3).json()
        pages += 1
        assert len(page["records"]) <= 3
        seen += [r["jobid"].rsplit("/", 1)[1] for r in page["records"]]
        if page["history_done"]:
            break
        since = page["next"]
    assert [k for k in seen if k in keys] == keys
    assert pages >= 3


def test_metrics_show_the_change_sequence_head_and_feed_lag(api: Api) -> None:
    import re

    feed = created(subscribe(api, history=False))
    (seq,) = tag(api, register_job(api), "color", "plum")
    state = api.client.get(f"/v1/feeds/{feed}", headers=api.auth(INDEXER, Role.INDEXER)).json()
    assert state["head_seq"] >= seq
    assert state["lag_seq"] >= 1  # the tag is not acknowledged yet
    assert state["lag_seconds"] >= 0
    text = api.client.get("/metrics").text
    found = re.search(r"^jp_change_seq_head (\S+)$", text, re.M)
    assert found is not None
    assert float(found.group(1)) >= seq


def test_namespace_patterns_select_by_prefix_in_history_and_continuous(api: Api) -> None:
    from uuid import uuid4

    from jp_primary.attributes.names import LB_TAG

    mark = uuid4().hex  # the database is shared by the session's tests: values of our own
    job = register_job(api)
    tag(api, job, "run", mark)
    tag(api, job, f"p_{mark}", "under")
    tag(api, job, f"pX{mark}", "other")  # "_" is a literal, not LIKE's any-character
    only_ours = [{"attr": "tag:run", "op": "eq", "value": mark}]
    every_tag = created(subscribe(api, attributes=["tag:*"], conditions=only_ours))
    prefixed = created(
        subscribe(api, attributes=[f"{LB_TAG}:P_{mark}*"], conditions=only_ours)  # any case
    )
    history, token = drain(api, every_tag)
    assert [r["jobid"].rsplit("/", 1)[1] for r in history] == [job]
    sent = {v["name"]: v["value"] for v in history[0]["values"]}
    assert sent == {
        f"{LB_TAG}:run": mark,
        f"{LB_TAG}:p_{mark}": "under",
        f"{LB_TAG}:pX{mark}": "other",
    }
    narrow, narrow_token = drain(api, prefixed)
    assert [v["value"] for r in narrow for v in r["values"]] == ["under"]

    tag(api, job, f"p_{mark}", "again")  # continuous: the new value on both feeds
    tag(api, job, f"pX{mark}", "only-wide")
    later, _ = drain(api, every_tag, token)
    assert sorted(v["value"] for r in later for v in r["values"]) == ["again", "only-wide"]
    later, _ = drain(api, prefixed, narrow_token)
    assert [v["value"] for r in later for v in r["values"]] == ["again"]


@pytest.mark.parametrize("pattern", ["*", "tag:*x", "ta*g:color", "nosuch*"])
def test_bad_patterns_are_422(api: Api, pattern: str) -> None:
    answer = subscribe(api, attributes=[pattern])
    assert answer.status_code == 422, answer.text
    assert "attributes[0]" in answer.json()["detail"]
