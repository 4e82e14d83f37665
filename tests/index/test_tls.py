"""The index server's TLS listener, as a real ``jp-primary index-server`` process: X.509 client
certificates and RFC 3820 proxies (one and two levels) identify their end-entity's DN, which the
index's owner isolation and role file then use; a certificate from a CA the server does not trust,
a forged proxy and (with ``client_cert = "required"``) no certificate at all fail the handshake.

The index holds two jobs (Alice's and Bob's), written through the index's own write path before
the server starts; its one feed points at a port where no primary listens (it only has to exist:
the server forgets the records of feeds its configuration does not name)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jp_primary.index import feedstate, migrate
from jp_primary.index.apply import Applier
from jp_primary.index.catalog import Catalog
from jp_primary.index.config import parse_config
from jp_primary.index.session import create_index_engine
from jp_primary.index.wire import FeedRecord
from tests.auth.certs import GridPKI, make_pki
from tests.auth.test_tls_real import client_context
from tests.helpers import ALICE, BOB, new_jobid
from tests.index.processes import IndexServer, free_port

pytestmark = pytest.mark.slow

SOURCE = f"http://127.0.0.1:{free_port()}"  # nothing listens there
CONFIG = """
[server]
port = {port}
home = "{home}"
tls_cert = "{cert}"
tls_key = "{key}"
ca_file = "{ca_file}"
client_cert = "{client_cert}"

[auth]
policy_file = "{policy}"

[[attributes]]
name = "lb:status"
indexed = true

[[feeds]]
name = "down"
url = "{source}"
mode = "pull"
"""
DONE = [{"attr": "lb:status", "op": "eq", "value": "Done"}]


def _seed(config_text: str, jobs: dict[str, str]) -> None:
    """Alice's and Bob's jobs in the index's database, as a pulled page would bring them."""
    config = parse_config(config_text)
    migrate.upgrade(config.database_url)
    engine = create_index_engine(config.database_url)
    feed = config.feeds[0]
    records = [
        FeedRecord.model_validate(
            {
                "jobid": jobid,
                "owner": owner,
                "values": [{"name": "lb:status", "value": "Done", "origin": "FILE", "seq": n}],
            }
        )
        for n, (jobid, owner) in enumerate(jobs.items(), start=1)
    ]
    try:
        with engine.begin() as conn:
            fingerprint = feed.fingerprint(config.feed_attributes(feed))
            feedstate.ensure(conn, feed.name, feed.url, fingerprint, feed.mode)
            Applier(Catalog(config)).apply(conn, feed.name, feed.url, records)
    finally:
        engine.dispose()


def _start(pki: GridPKI, home: Path, client_cert: str) -> Iterator[tuple[IndexServer, dict]]:
    policy = home / "policy.toml"
    home.mkdir(parents=True)
    policy.write_text(f'[admin]\ndns = ["{BOB}"]\n')  # Bob administers the index
    cert, key = pki.files("host")
    jobs = {new_jobid(): ALICE, new_jobid(): BOB}

    def config(server: IndexServer) -> str:
        return CONFIG.format(
            port=server.port,
            home=home,
            cert=cert,
            key=key,
            ca_file=pki.ca_file,
            client_cert=client_cert,
            policy=policy,
            source=SOURCE,
        )

    index = IndexServer(home, config)
    _seed(index.config_path.read_text(), jobs)
    index.verify = client_context(pki, "bob")  # its /healthz probe: a "required" server asks
    index.start()
    try:
        yield index, jobs
    finally:
        index.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GridPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def optional(pki: GridPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    yield from _start(pki, tmp_path_factory.mktemp("optional") / "home", "optional")


@pytest.fixture(scope="module")
def required(pki: GridPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    yield from _start(pki, tmp_path_factory.mktemp("required") / "home", "required")


@pytest.fixture(params=["optional", "required"])
def server(request: pytest.FixtureRequest) -> tuple[IndexServer, dict]:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def _query(index: IndexServer, pki: GridPKI, name: str | None) -> httpx.Response:
    return httpx.post(
        f"{index.url}/v1/query",
        json={"where": DONE},
        verify=client_context(pki, name),
        timeout=30,
    )


@pytest.mark.parametrize("name", ["alice", "alice_proxy", "alice_proxy2"])
def test_a_certificate_or_a_proxy_queries_as_its_owner(
    server: tuple[IndexServer, dict], pki: GridPKI, name: str
) -> None:
    index, jobs = server
    response = _query(index, pki, name)
    assert response.status_code == 200, response.text
    found = response.json()["jobs"]
    # Owner isolation by the EEC's DN: Alice sees her job only, with the primary it came from.
    assert [(j["jobid"], j["owner"]) for j in found] == [
        (jobid, owner) for jobid, owner in jobs.items() if owner == ALICE
    ]
    assert found[0]["primary_storage"] == SOURCE
    assert index.url.startswith("https://")


def test_the_policy_file_applies_to_certificate_subjects(
    optional: tuple[IndexServer, dict], pki: GridPKI
) -> None:
    index, jobs = optional
    every = _query(index, pki, "bob")
    assert every.status_code == 200, every.text
    assert {j["jobid"] for j in every.json()["jobs"]} == set(jobs)  # admin: every owner's job
    feeds = httpx.get(f"{index.url}/v1/feeds", verify=client_context(pki, "bob"), timeout=30)
    assert feeds.status_code == 200
    assert [f["name"] for f in feeds.json()["feeds"]] == ["down"]
    refused = httpx.get(f"{index.url}/v1/feeds", verify=client_context(pki, "alice"), timeout=30)
    assert refused.status_code == 403


@pytest.mark.parametrize("name", ["stranger", "forged_proxy", "expired"])
def test_an_untrusted_certificate_fails_the_handshake(
    server: tuple[IndexServer, dict], pki: GridPKI, name: str
) -> None:
    index, _ = server
    with pytest.raises(httpx.TransportError):
        _query(index, pki, name)  # stranger: issued by a CA the server does not know


def test_without_a_certificate(
    optional: tuple[IndexServer, dict], required: tuple[IndexServer, dict], pki: GridPKI
) -> None:
    anonymous = _query(optional[0], pki, None)
    assert anonymous.status_code == 401  # optional: the connection stands, the query needs a who
    assert anonymous.json()["error"] == "Unauthenticated"
    with pytest.raises(httpx.TransportError):
        _query(required[0], pki, None)
