"""``jp-primary import`` and ``jp-primary lb split-dump``."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jp_primary.client.connect import add_connection_arguments, credentials_from, url_from
from jp_primary.client.maildir import Maildir
from jp_primary.client.sync import Client
from jp_primary.importer.daemon import Importer, Options


def client_factory(args: argparse.Namespace) -> Callable[[str | None], Client]:
    """One client per service: the default (``--url``) or the one a message's ``jpps`` names
    (``host:port`` means https)."""
    default = url_from(args)
    credentials = credentials_from(args)
    clients: dict[str, Client] = {}
    lock = threading.Lock()

    def client_for(jpps: str | None) -> Client:
        url = default
        if jpps:
            url = jpps if "://" in jpps else f"https://{jpps}"
        with lock:
            if url not in clients:
                clients[url] = Client(url, credentials=credentials)
            return clients[url]

    return client_for


def add_daemon_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="drain what is due and exit")
    parser.add_argument("--workers", type=int, default=8, help="deliveries in parallel (8)")
    parser.add_argument(
        "--retry-first", type=float, default=5.0, help="seconds before the first retry (5)"
    )
    parser.add_argument(
        "--retry-max", type=float, default=300.0, help="longest wait between retries (300 s)"
    )
    parser.add_argument(
        "--give-up",
        type=float,
        default=3600.0,
        help="seconds after the first failure a message goes to undeliverable/ (3600)",
    )
    parser.add_argument(
        "--poll", type=float, default=1.0, help="seconds between looks at an idle maildir (1)"
    )
    add_connection_arguments(parser)


def options_from(args: argparse.Namespace, **extra: Any) -> Options:
    return Options(
        retry_first=args.retry_first,
        retry_max=args.retry_max,
        give_up=args.give_up,
        workers=args.workers,
        poll=args.poll,
        once=args.once,
        **extra,
    )


def _import(args: argparse.Namespace, _settings: object) -> int:
    importer = Importer(
        Maildir(args.maildir),
        client_factory(args),
        options_from(args, keep_files=args.keep_files, bulk=args.bulk),
    )
    return importer.run()


def _split(args: argparse.Namespace, _settings: object) -> int:
    from jp_primary.importer.splitter import split_dump

    def warn(text: str) -> None:
        print(f"jp-primary lb split-dump: {text}", file=sys.stderr)

    report = split_dump(
        Path(args.purge_file),
        Path(args.out),
        Maildir(args.maildir) if args.maildir else None,
        unsorted=args.unsorted,
        warn=warn,
    )
    queued = f", {report.jobs} dump messages queued in {args.maildir}" if args.maildir else ""
    print(
        f"{report.lines} lines, {report.jobs} jobs, {report.skipped} lines without a DG.JOBID "
        f"skipped{queued}",
        file=sys.stderr,
    )
    return 0


def register(sub: Any) -> None:
    command = sub.add_parser(
        "import", help="deliver an L&B/WMS maildir (registrations, dumps, sandboxes)"
    )
    command.add_argument("--maildir", required=True, help="the maildir (tmp new work post ...)")
    command.add_argument(
        "--keep-files", action="store_true", help="leave delivered dump files in place"
    )
    command.add_argument(
        "--bulk",
        type=int,
        default=Options.bulk,
        help=f"dumps waiting together go in one request, up to this many ({Options.bulk}; "
        "1: one request per dump)",
    )
    add_daemon_arguments(command)
    command.set_defaults(run=_import)

    lb = sub.add_parser("lb", help="L&B tools").add_subparsers(dest="lb_command", required=True)
    split = lb.add_parser("split-dump", help="split a purge dump into per-job dump files")
    split.add_argument("purge_file", help="the L&B purge dump")
    split.add_argument("--out", required=True, help="folder for the per-job files")
    split.add_argument("--maildir", help="queue one dump message per job here")
    split.add_argument(
        "--unsorted", action="store_true", help="the dump's lines are not clustered by job"
    )
    split.set_defaults(run=_split)
