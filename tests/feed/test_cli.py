"""``jp-primary feed-worker``, ``feed tail|list`` and ``serve --no-feed-worker``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jp_primary import cli, serve
from jp_primary.auth.identity import Role
from jp_primary.config import load_settings
from jp_primary.feed.cli import condition
from tests.crash.server import ServiceProcess
from tests.feed.procs import INDEXER, Client


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("lb:status=Done", {"attr": "lb:status", "op": "eq", "value": "Done"}),
        ("tag:n != 3", {"attr": "tag:n", "op": "ne", "value": "3"}),
        (
            "system:regtime>2024-01-01T00:00:00Z",
            {"attr": "system:regtime", "op": "gt", "value": "2024-01-01T00:00:00Z"},
        ),
        ("tag:n<9", {"attr": "tag:n", "op": "lt", "value": "9"}),
        ("jdl:Executable^=/bin/", {"attr": "jdl:Executable", "op": "prefix", "value": "/bin/"}),
        ("tag:color", {"attr": "tag:color", "op": "exists"}),
    ],
)
def test_where_expressions(text: str, parsed: dict[str, Any]) -> None:
    assert condition(text) == parsed


def test_the_commands_parse() -> None:
    parser = cli._parser()
    assert parser.parse_args(["feed-worker"]).run.__name__ == "_worker"
    tail = parser.parse_args(["feed", "tail", "--attr", "lb:status", "--where", "lb:status=Done"])
    assert tail.attr == ["lb:status"]
    assert tail.where == ["lb:status=Done"]
    assert parser.parse_args(["feed", "list"]).run.__name__ == "_list"
    assert parser.parse_args(["serve", "--no-feed-worker"]).no_feed_worker is True


def test_serve_without_feed_worker_tells_the_worker_processes(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(serve.migrate, "pending", lambda url: False)
    monkeypatch.setattr(serve.uvicorn, "run", lambda *a, **k: seen.update(os.environ))
    args = cli._parser().parse_args(["serve", "--no-feed-worker", "--port", "0"])
    serve.serve(args, load_settings())
    assert seen["JP_FEED_WORKER"] == "0"
    assert load_settings().feed.worker is False


@pytest.mark.slow
def test_feed_tail_prints_the_history_as_json_lines_and_list_shows_feeds(
    tmp_path: Path, database_url: str
) -> None:
    with ServiceProcess(tmp_path / "home", database_url) as service:
        api = Client(service)
        key = api.job()
        api.tag(key, "color", "teal")
        # An indexer of its own: the database is shared with other tests' feeds.
        api.indexer = service.auth(f"{INDEXER}/CN=tail-{key}", Role.INDEXER)
        bearer = api.indexer["Authorization"].split(" ", 1)[1]
        common = ["--url", service.base_url, "--token", bearer]
        tail = subprocess.run(
            [
                sys.executable,
                "-m",
                "jp_primary.cli",
                "feed",
                "tail",
                *common,
                "--attr",
                "tag:color",
                "--where",
                "tag:color=teal",
                "--history",
                "--no-continuous",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert tail.returncode == 0, tail.stderr
        records = [json.loads(line) for line in tail.stdout.splitlines()]
        assert [r["jobid"].rsplit("/", 1)[1] for r in records] == [key]
        assert records[0]["values"][0]["value"] == "teal"
        api.subscribe()
        listed = subprocess.run(
            [sys.executable, "-m", "jp_primary.cli", "feed", "list", *common],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        feeds = [json.loads(line) for line in listed.stdout.splitlines()]
        assert len(feeds) == 1  # tail cancelled its own feed on the way out
        assert feeds[0]["mode"] == "pull"
