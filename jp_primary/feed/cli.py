"""``jp-primary feed-worker`` and ``jp-primary feed tail|list`` (registered by ``cli.py``).

``feed tail`` and ``feed list`` are HTTP clients of a running service (bearer token only for
now; the client library will bring certificates and proxies).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from jp_primary.config import Settings

# Longest first: "!=" and "^=" before "=".
_WHERE = re.compile(r"^(?P<attr>[^!<>=^]+?)\s*(?P<op>!=|\^=|=|<|>)\s*(?P<value>.*)$")
_OPS = {"=": "eq", "!=": "ne", "<": "lt", ">": "gt", "^=": "prefix"}


def register(sub: Any) -> None:
    worker = sub.add_parser("feed-worker", help="deliver push feeds (several may share one DB)")
    worker.set_defaults(run=_worker)

    feed = sub.add_parser("feed", help="consume or list feeds of a running service")
    action = feed.add_subparsers(dest="action", required=True)
    tail = action.add_parser("tail", help="subscribe in pull mode and print records (JSON lines)")
    _client_options(tail)
    tail.add_argument(
        "--attr",
        action="append",
        required=True,
        help="attribute to receive (tag:* = a whole namespace)",
    )
    tail.add_argument(
        "--where",
        action="append",
        default=[],
        help="a condition: NAME=V, NAME!=V, NAME<V, NAME>V, NAME^=PREFIX, or NAME (exists)",
    )
    tail.add_argument("--history", action="store_true", help="first the jobs matching now")
    tail.add_argument("--no-continuous", action="store_true", help="stop after the history")
    tail.add_argument("--ttl", type=int, help="feed lifetime in seconds (refreshed while running)")
    tail.set_defaults(run=_tail)
    listing = action.add_parser("list", help="the caller's feeds (JSON lines)")
    _client_options(listing)
    listing.set_defaults(run=_list)


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("JP_URL", "http://127.0.0.1:8901"))
    parser.add_argument("--token", default=os.environ.get("JP_TOKEN"))
    parser.add_argument("--token-file", help="file holding the bearer token")


def condition(text: str) -> dict[str, Any]:
    """A ``--where`` expression as a condition object."""
    found = _WHERE.match(text.strip())
    if found is None:
        return {"attr": text.strip(), "op": "exists"}
    return {"attr": found["attr"].strip(), "op": _OPS[found["op"]], "value": found["value"]}


def _headers(args: argparse.Namespace) -> dict[str, str]:
    token = args.token
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    body: dict[str, Any] = {
        "attributes": args.attr,
        "conditions": [condition(w) for w in args.where],
        "history": args.history,
        "continuous": not args.no_continuous,
    }
    if not (body["history"] or body["continuous"]):
        print("jp-primary: --no-continuous needs --history", file=sys.stderr)
        return 2
    if args.ttl:
        body["ttl_seconds"] = args.ttl
    with httpx.Client(base_url=args.url, headers=_headers(args), timeout=90) as client:
        created = client.post("/v1/feeds", json=body)
        if created.status_code != 201:
            print(f"jp-primary: {created.status_code} {created.text}", file=sys.stderr)
            return 1
        feed_id = created.json()["feed_id"]
        print(f"feed {feed_id}", file=sys.stderr, flush=True)
        return _follow(client, feed_id, stop_after_history=args.no_continuous)


def _follow(client: Any, feed_id: str, *, stop_after_history: bool) -> int:
    since: str | None = None
    refresh_every, polls = 20, 0
    try:
        while True:
            params: dict[str, Any] = {"wait": 30}
            if since is not None:
                params["since"] = since
            answer = client.get(f"/v1/feeds/{feed_id}/changes", params=params)
            if answer.status_code != 200:
                print(f"jp-primary: {answer.status_code} {answer.text}", file=sys.stderr)
                return 1
            page = answer.json()
            for record in page["records"]:
                print(json.dumps(record, ensure_ascii=False), flush=True)
            since = page["next"]
            if stop_after_history and page["history_done"]:
                return 0
            polls += 1
            if polls % refresh_every == 0:
                client.post(f"/v1/feeds/{feed_id}/refresh")
    except KeyboardInterrupt:
        return 0
    finally:
        with contextlib.suppress(Exception):
            client.delete(f"/v1/feeds/{feed_id}")


def _list(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    answer = httpx.get(f"{args.url.rstrip('/')}/v1/feeds", headers=_headers(args), timeout=30)
    if answer.status_code != 200:
        print(f"jp-primary: {answer.status_code} {answer.text}", file=sys.stderr)
        return 1
    for feed in answer.json():
        print(json.dumps(feed, ensure_ascii=False))
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from jp_primary.db import migrate
    from jp_primary.db.session import Database, create_db_engine
    from jp_primary.errors import ConfigurationError
    from jp_primary.feed.dispatcher import FeedDispatcher, dispatch_settings
    from jp_primary.feed.engine import build_engine
    from jp_primary.feed.maintenance import purge_forever
    from jp_primary.plugins.registry import PluginRegistry

    if migrate.pending(settings.database_url):
        raise ConfigurationError("the database schema is not up to date: run `jp-primary migrate`")
    logging.basicConfig(level=logging.INFO)

    async def run() -> int:
        engine = create_db_engine(settings.database_url, settings.database.pool_size)
        plugins = PluginRegistry()
        plugins.load()
        database = Database(engine, plugins.attribute_types())
        feed_engine = build_engine(database, plugins, settings.feed.batch_jobs)
        grace = timedelta(seconds=settings.feed.purge_grace)
        worker = asyncio.gather(
            FeedDispatcher(feed_engine, dispatch_settings(settings.feed)).run(),
            purge_forever(feed_engine, grace),
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.cancel)
        print("jp-primary feed-worker: delivering push feeds", file=sys.stderr, flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        engine.dispose()
        return 0

    return asyncio.run(run())
