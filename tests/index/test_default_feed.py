"""The default configuration's feed asks the primary for user tags as ``lbtag:*``: the primary's
feed (SQLite and PostgreSQL) must deliver every user tag for it, in history and continuous."""

from __future__ import annotations

from uuid import uuid4

from jp_primary.attributes.names import LB_TAG
from jp_primary.auth.identity import Role
from jp_primary.index.config import default_config_text, parse_config
from tests.helpers import ALICE, Api, register_job

INDEXER = "/DC=org/DC=example/CN=index.example.org"


def _tag(api: Api, key: str, name: str, value: str) -> None:
    answer = api.client.post(
        f"/v1/jobs/{key}/tags", json={"name": name, "value": value}, headers=api.auth(ALICE)
    )
    assert answer.status_code == 201, answer.text


def _drain(api: Api, feed_id: str, since: str | None) -> tuple[list[dict[str, object]], str]:
    records: list[dict[str, object]] = []
    while True:
        params = {} if since is None else {"since": since}
        answer = api.client.get(
            f"/v1/feeds/{feed_id}/changes", params=params, headers=api.auth(INDEXER, Role.INDEXER)
        )
        assert answer.status_code == 200, answer.text
        page = answer.json()
        records += page["records"]
        if page["next"] == since:
            return records, page["next"]
        since = page["next"]


def _tags_sent(records: list[dict[str, object]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for record in records:
        for value in record["values"]:  # type: ignore[attr-defined]
            if value["name"].startswith(LB_TAG + ":"):
                out[value["name"].removeprefix(LB_TAG + ":")] = value["value"]
    return out


def test_the_default_configuration_brings_user_tags_to_the_index(api: Api) -> None:
    config = parse_config(default_config_text())
    feed = config.feeds[0]
    attributes = config.feed_attributes(feed)
    assert any(name.endswith(":*") for name in attributes)  # the namespace pattern is asked for
    mark = uuid4().hex  # the database is shared by the session's tests: a value of our own
    job = register_job(api)
    _tag(api, job, "run", mark)
    _tag(api, job, "colour", "teal")
    body = {
        "attributes": attributes,
        "conditions": [{"attr": "tag:run", "op": "eq", "value": mark}],
        "history": True,
        "continuous": True,
    }
    answer = api.client.post("/v1/feeds", json=body, headers=api.auth(INDEXER, Role.INDEXER))
    assert answer.status_code == 201, answer.text
    feed_id = answer.json()["feed_id"]
    history, token = _drain(api, feed_id, None)
    assert _tags_sent(history) == {"run": mark, "colour": "teal"}
    _tag(api, job, "size", "XL")
    later, _ = _drain(api, feed_id, token)
    assert _tags_sent(later) == {"size": "XL"}
