"""``jp-primary index-server --config index.toml``: the reference index server."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from jp_primary.config import Settings
from jp_primary.errors import ConfigurationError

APP = "jp_primary.index.api.app:create_index_app"


def register(sub: Any) -> None:
    index = sub.add_parser(
        "index-server", help="run the reference index server (feeds in, queries out)"
    )
    index.add_argument("--config", help="the index server's TOML configuration file")
    index.add_argument(
        "--print-default-config", action="store_true", help="print the default configuration"
    )
    index.add_argument(
        "--migrate-only", action="store_true", help="bring the index database up to date and stop"
    )
    index.set_defaults(run=run)


def _tls(config: Any) -> dict[str, Any]:
    server = config.server
    if not server.tls_cert:
        return {}
    from jp_primary.auth.tlsserver import tls_uvicorn_kwargs

    if not server.tls_key:
        raise ConfigurationError("server.tls_cert needs server.tls_key")
    return tls_uvicorn_kwargs(
        tls_cert=server.tls_cert,
        tls_key=server.tls_key,
        ca_file=server.ca_file,
        ca_dir=server.ca_dir,
        client_cert=server.client_cert,
    )


def run(args: argparse.Namespace, _settings: Settings) -> int:
    from jp_primary.index import migrate
    from jp_primary.index.config import default_config_text, load_config

    if args.print_default_config:
        print(default_config_text(), end="")
        return 0
    if not args.config:
        raise ConfigurationError("index-server needs --config FILE (see --print-default-config)")
    config = load_config(args.config)
    migrate.upgrade(config.database_url)
    if args.migrate_only:
        return 0
    import uvicorn

    from jp_primary.protocol import protocol_kwargs

    listener = {"proxy_headers": False} | protocol_kwargs() | _tls(config)
    os.environ["JP_INDEX_CONFIG"] = os.path.abspath(args.config)
    scheme = "https" if config.server.tls_cert else "http"
    url = f"{scheme}://{config.server.host}:{config.server.port}"
    print(f"jp_primary index server listening on {url}", file=sys.stderr, flush=True)
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per pull would drown the log
    # One process: the feed lifecycle runs inside it (its state is in the database, so a
    # restarted process resumes; two processes would subscribe twice).
    uvicorn.run(
        APP,
        factory=True,
        host=config.server.host,
        port=config.server.port,
        workers=1,
        log_level="info",
        access_log=False,
        **listener,
    )
    return 0
