"""The user commands on the client library: ``upload get files tag attrs record query`` and
``spool send``. Human output by default, ``--json`` for scripts; errors are one line on stderr
(exit 1), bad credentials or arguments exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from jp_primary.client.connect import add_connection_arguments, client_from
from jp_primary.client.errors import APIError, ClientError, CredentialsError
from jp_primary.client.transfer import Progress

OPS = ("eq", "ne", "lt", "gt", "within", "exists", "in", "prefix")


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def _print_json(value: Any) -> None:
    print(json.dumps(_dump(value), indent=2, ensure_ascii=False))


@contextmanager
def _bar(label: str, total: int | None, enabled: bool) -> Iterator[Callable[..., None]]:
    """A rich progress bar on stderr (off when not a terminal or with --quiet)."""
    if not enabled:
        yield lambda *a, **k: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import (
        Progress as RichProgress,
    )

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with RichProgress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)

        def update(advance: int = 0, total: int | None = None) -> None:
            bar.update(task, advance=advance, total=total)

        yield update


def _show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


# -- commands -----------------------------------------------------------------------------------


def _upload(args: argparse.Namespace) -> int:
    path = Path(args.file)
    with (
        client_from(args) as client,
        _bar(path.name, path.stat().st_size, _show_progress(args)) as bar,
    ):
        progress: Progress = lambda n: bar(advance=n)  # noqa: E731
        stored = client.upload(
            args.job, args.file_class, path, name=args.name, direct=args.direct, progress=progress
        )
    if args.json:
        _print_json(stored)
    else:
        print(
            f"stored {stored.file_class} {stored.name or '(no name)'}: {stored.size} bytes, "
            f"sha256 {stored.sha256}"
        )
        for value in stored.extraction.values[:20]:
            print(f"  {value.name} = {value.value}")
    return 0


def _get(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        if args.output in (None, "-"):
            sys.stdout.buffer.write(client.read(args.job, args.file_class, args.name))
            return 0
        with _bar(Path(args.output).name, None, _show_progress(args)) as bar:

            def total(response: Any) -> None:
                length = response.headers.get("content-length")
                bar(total=int(length) if length else None)

            path = client.download(
                args.job,
                args.file_class,
                args.output,
                name=args.name,
                progress=lambda n: bar(advance=n),
                total=total,
            )
    print(f"saved {path} ({path.stat().st_size} bytes)", file=sys.stderr)
    return 0


def _files(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        files = client.files(args.job)
    if args.json:
        _print_json(files)
        return 0
    for f in files:
        print(f"{f.file_class}\t{f.name or '-'}\t{f.size}\t{f.sha256}\t{f.committed_at}")
    return 0


def _tag(args: argparse.Namespace) -> int:
    pairs: list[tuple[str, str]] = []
    for item in args.tags:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"jp-primary tag: {item!r} is not NAME=VALUE", file=sys.stderr)
            return 2
        pairs.append((name, value))
    with client_from(args) as client:
        stored = client.add_tags(args.job, pairs)
    if args.json:
        _print_json(stored)
    else:
        for t in stored:
            print(f"tagged {t.name}={t.value} (seq {t.seq})")
    return 0


def _attrs(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        found = client.attributes(args.job, args.names)
    if args.json:
        _print_json(found)
        return 0
    for v in found.values:
        print(f"{v.name}\t{v.value}\t{v.origin}\t{v.timestamp.isoformat()}")
    return 0


def _record(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        document = client.record(args.job)
    if args.json:
        _print_json({"job": args.job, "record": document})
    else:
        print(document)
    return 0


def parse_condition(words: list[str]) -> dict[str, Any]:
    """``ATTR OP [VALUE [VALUE2]]`` (``in`` takes the values that follow) as a ``where`` item."""
    if len(words) < 2 or words[1] not in OPS:
        raise ValueError(
            f"--where {' '.join(words)}: write ATTR OP [VALUE...], OP one of {', '.join(OPS)}"
        )
    attr, op, rest = words[0], words[1], words[2:]
    item: dict[str, Any] = {"attr": attr, "op": op}
    if op == "exists":
        return item
    if op == "in":
        return item | {"values": rest}
    if op == "within":
        if len(rest) != 2:
            raise ValueError("within takes two values: from and to")
        return item | {"value": rest[0], "value2": rest[1]}
    if len(rest) != 1:
        raise ValueError(f"{op} takes one value")
    return item | {"value": rest[0]}


def _query(args: argparse.Namespace) -> int:
    try:
        where = [parse_condition(words) for words in args.where or []]
    except ValueError as exc:
        print(f"jp-primary query: {exc}", file=sys.stderr)
        return 2
    count = 0
    with client_from(args) as client:
        for job in client.query(
            where, args.select or [], latest=args.latest or None, limit=args.page_size
        ):
            count += 1
            if args.json:
                print(json.dumps(_dump(job), ensure_ascii=False))
            else:
                print(job.jobid)
                for v in job.values:
                    print(f"  {v.name} = {v.value}")
            if args.max and count >= args.max:
                break
    if not args.json:
        print(f"{count} jobs", file=sys.stderr)
    return 0


def _spool_send(args: argparse.Namespace) -> int:
    from jp_primary.client.maildir import Maildir
    from jp_primary.importer.cli import client_factory, options_from
    from jp_primary.importer.daemon import Importer

    importer = Importer(Maildir(args.spool), client_factory(args), options_from(args))
    return importer.run()


# -- wiring -------------------------------------------------------------------------------------


def _guarded(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace, Any], int]:
    def run(args: argparse.Namespace, _settings: Any) -> int:
        try:
            return command(args)
        except CredentialsError as exc:
            print(f"jp-primary {args.command}: {exc}", file=sys.stderr)
            return 2
        except APIError as exc:
            print(
                f"jp-primary {args.command}: {exc.status} {exc.error}: {exc.detail}",
                file=sys.stderr,
            )
            return 1
        except (ClientError, OSError) as exc:
            print(f"jp-primary {args.command}: {exc}", file=sys.stderr)
            return 1

    return run


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="JSON output for scripts")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_connection_arguments(parser)


def register(sub: Any) -> None:
    up = sub.add_parser(
        "upload", help="store a file for a job (two-phase and resumable over 64 MiB)"
    )
    up.add_argument("job", help="job key or full jobid")
    up.add_argument("file_class", metavar="CLASS", help="lb, isb, osb, jdl, condor-log, ...")
    up.add_argument("file", help="the file to send")
    up.add_argument("--name", default="", help="distinguishes several files of one class")
    up.add_argument("--direct", action="store_true", help="send to the store's own URL if offered")
    _common(up)
    up.set_defaults(run=_guarded(_upload))

    get = sub.add_parser("get", help="fetch a stored file (resumes an interrupted download)")
    get.add_argument("job")
    get.add_argument("file_class", metavar="CLASS")
    get.add_argument("--name", default="")
    get.add_argument("-o", "--output", help="file to write (default: standard output)")
    _common(get)
    get.set_defaults(run=_guarded(_get))

    files = sub.add_parser("files", help="list a job's files")
    files.add_argument("job")
    _common(files)
    files.set_defaults(run=_guarded(_files))

    tag = sub.add_parser("tag", help="record user tags NAME=VALUE")
    tag.add_argument("job")
    tag.add_argument("tags", nargs="+", metavar="NAME=VALUE")
    _common(tag)
    tag.set_defaults(run=_guarded(_tag))

    attrs = sub.add_parser("attrs", help="a job's attribute values (all or the NAMEs given)")
    attrs.add_argument("job")
    attrs.add_argument("names", nargs="*", metavar="NAME")
    _common(attrs)
    attrs.set_defaults(run=_guarded(_attrs))

    record = sub.add_parser("record", help="a job's JobRecord (XML)")
    record.add_argument("job")
    _common(record)
    record.set_defaults(run=_guarded(_record))

    query = sub.add_parser("query", help="jobs whose attributes match (POST /v1/query)")
    query.add_argument(
        "--where",
        nargs="+",
        action="append",
        metavar="WORD",
        help="ATTR OP [VALUE...] (repeatable)",
    )
    query.add_argument("--select", action="append", metavar="ATTR", help="attributes to return")
    query.add_argument("--latest", action="store_true", help="only the latest value of each")
    query.add_argument("--page-size", type=int, help="jobs per request")
    query.add_argument("--max", type=int, help="stop after this many jobs")
    _common(query)
    query.set_defaults(run=_guarded(_query))

    spool = sub.add_parser("spool", help="the fire-and-forget spool of upload_files")
    send = spool.add_subparsers(dest="spool_command", required=True).add_parser(
        "send", help="deliver the spool's messages (drains and exits unless --follow)"
    )
    from jp_primary.importer.cli import add_daemon_arguments

    send.add_argument("--spool", help="the spool (default JP_SPOOL or $JP_HOME/spool)")
    send.add_argument("--follow", action="store_true", help="keep running, as the importer")
    add_daemon_arguments(send)
    send.set_defaults(run=_guarded(_spool_send_defaults))


def _spool_send_defaults(args: argparse.Namespace) -> int:
    from jp_primary.client.spool import default_spool

    args.spool = args.spool or str(default_spool())
    args.once = not args.follow or args.once
    return _spool_send(args)
