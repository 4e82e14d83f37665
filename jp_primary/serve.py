"""``jp-primary serve``: uvicorn with the settings, optionally a client-certificate listener."""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
from typing import Any

import uvicorn

from jp_primary.config import Settings
from jp_primary.db import migrate
from jp_primary.errors import ConfigurationError
from jp_primary.protocol import protocol_kwargs

APP = "jp_primary.app:create_app"
log = logging.getLogger(__name__)


def _tls_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if not args.tls_cert:
        return {}
    if not args.tls_key:
        raise ConfigurationError("--tls-cert needs --tls-key")
    from jp_primary.auth.tlsserver import tls_uvicorn_kwargs

    return tls_uvicorn_kwargs(
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        ca_file=args.ca_file,
        ca_dir=args.ca_dir,
        client_cert=args.client_cert,
    )


def _banner(url: str, settings: Settings) -> str:
    return "\n".join(
        [
            f"jp_primary listening on {url}",
            f"  API docs:  {url}/docs   (OpenAPI: {url}/openapi.json)",
            f"  data:      {settings.database_url.split('@')[-1]} · storage "
            f"{settings.storage.backend}",
            "  a token:   jp-primary token --subject '/C=XX/O=Example/CN=Your Name'"
            " [--role trusted|indexer|admin]",
            f'  use it:    curl -H "Authorization: Bearer $TOKEN" {url}/v1/jobs/<key>',
        ]
    )


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft open-file limit to the hard one (where allowed); return (old, new).

    Every connection is a file descriptor: with the common soft limit of 1,024, a thousand
    stalled clients would leave no descriptor for anyone else. Child processes (workers)
    inherit the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
            return soft, soft
        return soft, target
    return soft, soft


def serve(args: argparse.Namespace, settings: Settings) -> int:
    if migrate.pending(settings.database_url):
        raise ConfigurationError("the database schema is not up to date: run `jp-primary migrate`")
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    workers = args.workers or settings.server.workers
    # The TCP peer must reach the app unchanged: trusted front ends are recognised by it.
    tls = {"proxy_headers": False} | protocol_kwargs() | _tls_kwargs(args)
    # Worker processes re-read the settings from the environment: pass CLI choices on.
    os.environ["JP_HOST"], os.environ["JP_PORT"] = host, str(port)
    if getattr(args, "no_feed_worker", False):
        os.environ["JP_FEED_WORKER"] = "0"
    scheme = "https" if args.tls_cert else "http"
    print(_banner(f"{scheme}://{host}:{port}", settings), file=sys.stderr, flush=True)
    logging.basicConfig(level=logging.INFO)
    old, new = raise_open_file_limit()
    if new != old:
        log.info("open-file limit raised from %d to %d", old, new)
    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
        **tls,
    )
    return 0
