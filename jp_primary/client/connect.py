"""Command-line options of the commands that talk to a service, and the client they make."""

from __future__ import annotations

import argparse
import os

from jp_primary.client.credentials import Credentials
from jp_primary.client.sync import DEFAULT_URL, Client


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("service and credentials")
    group.add_argument("--url", help=f"the service (default JP_URL or {DEFAULT_URL})")
    group.add_argument("--token", help="bearer token (default JP_TOKEN)")
    group.add_argument("--token-file", help="file holding the bearer token (JP_TOKEN_FILE)")
    group.add_argument(
        "--cert",
        help="X.509 certificate or RFC 3820 proxy (default: X509_USER_PROXY, /tmp/x509up_u<uid>)",
    )
    group.add_argument("--key", help="the certificate's key (a proxy file holds its own)")
    group.add_argument("--ca-dir", help="CA directory to verify the service (X509_CERT_DIR)")
    group.add_argument("--ca-file", help="CA bundle to verify the service")


def credentials_from(args: argparse.Namespace) -> Credentials:
    return Credentials.lookup(
        token=args.token,
        token_file=args.token_file,
        cert=args.cert,
        key=args.key,
        ca_dir=args.ca_dir,
        ca_file=args.ca_file,
    )


def url_from(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("JP_URL") or DEFAULT_URL)


def client_from(args: argparse.Namespace, url: str | None = None) -> Client:
    return Client(url or url_from(args), credentials=credentials_from(args))
