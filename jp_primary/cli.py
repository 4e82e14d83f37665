"""``jp-primary``: run, migrate and operate the service."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key
from jp_primary.config import Settings, load_settings, settings_problems
from jp_primary.errors import ConfigurationError, JPError


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from jp_primary.db import migrate

    migrate.upgrade(settings.database_url)
    print(f"database is at the newest schema: {_safe_url(settings.database_url)}")
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _token(args: argparse.Namespace, settings: Settings) -> int:
    tokens = ServiceTokens(load_or_create_key(settings.token_key_path))
    ttl = args.ttl or settings.auth.token_ttl
    print(tokens.issue(args.subject, [Role(r) for r in args.role or []], ttl))
    return 0


def _openapi(args: argparse.Namespace, settings: Settings) -> int:
    from jp_primary.app import create_app

    print(json.dumps(create_app(settings).openapi(), indent=2, sort_keys=True))
    return 0


def _reextract(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from jp_primary.services.container import AppServices

    def progress(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            print(f"re-extracted {done}/{total} files", file=sys.stderr, flush=True)

    async def run() -> int:
        services = AppServices.build(settings)
        try:
            report = await services.reextract.reextract(args.file_class, args.job, progress)
        finally:
            await services.close()
        print(
            f"{report.files} files, {report.values} values derived, "
            f"{report.files_with_errors} files with extraction problems"
        )
        return 0

    return asyncio.run(run())


def _gc(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    from datetime import timedelta

    from jp_primary.backends.base import ObjectInfo
    from jp_primary.services.container import AppServices

    def show(info: ObjectInfo) -> None:
        print(f"{'deleting' if args.delete else 'orphan'} {info.key} ({info.size} bytes)")

    async def run() -> int:
        services = AppServices.build(settings)
        try:
            report = await services.gc.collect(
                delete=args.delete,
                min_age=timedelta(seconds=args.min_age),
                progress=show,
            )
        finally:
            await services.close()
        verb = "deleted" if report.deleted else "found (dry run; --delete removes them)"
        for directory in report.directories:
            print(f"{'deleting' if args.delete else 'empty'} {directory}")
        print(f"{len(report.orphans)} orphan objects, {report.bytes} bytes {verb}")
        print(f"{len(report.directories)} empty staging directories {verb}")
        return 0

    return asyncio.run(run())


def _quarantine(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import json

    from jp_primary.services.container import AppServices

    async def run() -> int:
        services = AppServices.build(settings)
        try:
            if args.action == "purge":
                done = await services.quarantine.purge()
                print(f"{done} quarantine entries past their retention deleted")
            else:
                print(json.dumps(await services.quarantine.entries(), indent=2))
        finally:
            await services.close()
        return 0

    return asyncio.run(run())


def _ftpd(args: argparse.Namespace, settings: Settings) -> int:
    from jp_primary.door.command import serve_door

    return serve_door(settings)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from jp_primary.serve import serve

    return serve(args, settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jp-primary", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the REST service")
    serve.add_argument("--host", help="listen address (default JP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default JP_PORT or 8901)")
    serve.add_argument("--workers", type=int, help="worker processes (default JP_WORKERS or 1)")
    serve.add_argument("--tls-cert", help="server certificate (PEM); enables TLS")
    serve.add_argument("--tls-key", help="server private key (PEM)")
    serve.add_argument("--ca-file", help="CA certificates for client certificates (PEM)")
    serve.add_argument("--ca-dir", help="directory of CA certificates for client certificates")
    serve.add_argument("--client-cert", choices=["required", "optional"], default="optional")
    serve.add_argument(
        "--no-feed-worker", action="store_true", help="no push-feed worker in this process"
    )
    serve.set_defaults(run=_serve)

    sub.add_parser("migrate", help="apply the database migrations").set_defaults(run=_migrate)

    token = sub.add_parser("token", help="print a bearer token signed with the service's key")
    token.add_argument("--subject", required=True, help="the identity, e.g. an X.509 DN")
    token.add_argument(
        "--role", action="append", choices=[r.value for r in Role], help="repeatable"
    )
    token.add_argument("--ttl", type=int, help="lifetime in seconds (default JP_TOKEN_TTL)")
    token.set_defaults(run=_token)

    sub.add_parser("openapi", help="print the OpenAPI document").set_defaults(run=_openapi)

    again = sub.add_parser("reextract", help="recompute derived values from the stored bytes")
    again.add_argument("--class", dest="file_class", help="only files of this class (e.g. lb)")
    again.add_argument("--job", help="only the files of this job key")
    again.set_defaults(run=_reextract)

    collect = sub.add_parser("gc", help="find stored objects no file or upload refers to")
    collect.add_argument("--delete", action="store_true", help="remove them (default: dry run)")
    collect.add_argument(
        "--min-age", type=int, default=3600, help="leave younger objects alone (seconds)"
    )
    collect.set_defaults(run=_gc)

    held = sub.add_parser(
        "quarantine", help="what squatters stored in jobs trusted registrations took over"
    )
    held.add_argument(
        "action", choices=["list", "purge"], help="list (JSON) or delete entries past retention"
    )
    held.set_defaults(run=_quarantine)

    door = sub.add_parser("ftpd", help="run the FTP upload door (JP_FTPD_* settings)")
    door.set_defaults(run=_ftpd)

    from jp_primary.client.cli import register as register_client_commands
    from jp_primary.importer.cli import register as register_importer_commands

    register_client_commands(sub)
    register_importer_commands(sub)

    from jp_primary.feed import cli as feed_cli

    feed_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as exc:
        for line in settings_problems(exc):
            print(f"jp-primary: configuration error: {line}", file=sys.stderr)
        return 2
    try:
        return int(args.run(args, settings))
    except ConfigurationError as exc:
        print(f"jp-primary: configuration error: {exc}", file=sys.stderr)
        return 2
    except JPError as exc:
        print(f"jp-primary: {exc.detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
