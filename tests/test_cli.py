"""The ``jp-primary`` command (jp_primary/cli.py): each subcommand's arguments, its output, and its
exit codes: 2 for usage and configuration errors (with the message on stderr), 1 for a refused
operation, 0 otherwise. Run in-process through ``main``; tests/services/test_gc.py and
tests/api/test_lb_upload.py run ``gc`` and ``reextract`` over real data as subprocesses.
"""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from sqlalchemy.engine import make_url

from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key
from jp_primary.cli import main
from jp_primary.db import migrate
from tests.helpers import ALICE

NOT_MIGRATED = (
    "configuration error: the database schema is not up to date: run `jp-primary migrate`"
)


@pytest.fixture
def home(clean_environment: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``JP_HOME`` in a fresh folder: the embedded SQLite database, not migrated yet."""
    folder = clean_environment / "home"
    monkeypatch.setenv("JP_HOME", str(folder))
    return folder


@pytest.fixture
def migrated(home: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``JP_DATABASE_URL`` set to a migrated database of each kind."""
    monkeypatch.setenv("JP_DATABASE_URL", database_url)
    return database_url


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``jp-primary argv`` expecting argparse to refuse it: exit code 2, the message."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2
    return capsys.readouterr().err


# -- arguments ------------------------------------------------------------------------------------


def test_a_subcommand_is_required(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "the following arguments are required: command" in usage_error(capsys)


def test_unknown_subcommand_is_a_usage_error(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "invalid choice: 'serv'" in usage_error(capsys, "serv")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["token"], "the following arguments are required: --subject"),
        (["token", "--subject", ALICE, "--role", "root"], "invalid choice: 'root'"),
        (["token", "--subject", ALICE, "--ttl", "1h"], "invalid int value: '1h'"),
        (["serve", "--port", "http"], "invalid int value: 'http'"),
        (["serve", "--client-cert", "sometimes"], "invalid choice: 'sometimes'"),
        (["gc", "--min-age", "old"], "invalid int value: 'old'"),
        (["migrate", "--force"], "unrecognized arguments: --force"),
    ],
    ids=["token-subject", "token-role", "token-ttl", "serve-port", "serve-client-cert", "gc-age",
         "migrate-extra"],
)  # fmt: skip
def test_bad_arguments_are_usage_errors(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    assert says in usage_error(capsys, *argv)
    assert not home.exists()  # refused before anything was created


# -- token ----------------------------------------------------------------------------------------


def test_token_is_signed_with_the_service_key(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["token", "--subject", ALICE, "--role", "trusted", "--role", "admin", "--ttl", "120"]
    assert main(argv) == 0
    token = capsys.readouterr().out.strip()
    key = home / "token.key"
    assert key.stat().st_mode & 0o777 == 0o600
    identity = ServiceTokens(load_or_create_key(key)).verify(token)
    assert identity.subject == ALICE
    assert identity.roles == {Role.TRUSTED, Role.ADMIN}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120


def test_token_lifetime_defaults_to_jp_token_ttl_and_the_key_is_kept(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JP_TOKEN_TTL", "300")
    assert main(["token", "--subject", ALICE]) == 0
    first = capsys.readouterr().out.strip()
    key = (home / "token.key").read_bytes()
    assert main(["token", "--subject", ALICE]) == 0
    second = capsys.readouterr().out.strip()
    assert (home / "token.key").read_bytes() == key  # created once, then reused
    for token in (first, second):
        identity = ServiceTokens(key.strip()).verify(token)
        assert (identity.subject, identity.roles) == (ALICE, frozenset())
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 300


# -- openapi --------------------------------------------------------------------------------------


def test_openapi_prints_the_document_without_a_database(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["openapi"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["openapi"].startswith("3.")
    assert "/v1/jobs" in document["paths"]
    assert not (home / "jp.sqlite").exists()


# -- migrate --------------------------------------------------------------------------------------


def test_migrate_brings_a_new_database_to_the_newest_schema(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{home / 'jp.sqlite'}"
    home.mkdir()
    assert migrate.pending(url)
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out == f"database is at the newest schema: {url}\n"
    assert not migrate.pending(url)
    assert main(["migrate"]) == 0  # again: nothing to do, same answer
    assert "newest schema" in capsys.readouterr().out


def test_migrate_is_idempotent_and_hides_the_password(
    migrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_url(migrated)
    if url.get_backend_name() == "postgresql":
        # The test server trusts local connections: any password gets in, none may be printed.
        url = url.set(password="hunter2-secret")
        monkeypatch.setenv("JP_DATABASE_URL", url.render_as_string(hide_password=False))
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("database is at the newest schema: ")
    assert "hunter2-secret" not in out
    assert str(url.database) in out
    assert not migrate.pending(migrated)


# -- serve ----------------------------------------------------------------------------------------


def test_serve_refuses_an_unmigrated_database(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.mkdir()
    assert main(["serve", "--port", "0"]) == 2
    assert capsys.readouterr().err.strip() == f"jp-primary: {NOT_MIGRATED}"
    assert migrate.pending(f"sqlite:///{home / 'jp.sqlite'}")  # and did not migrate it either


def test_serve_refuses_a_certificate_without_its_key(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", "0", "--tls-cert", "server.pem"]) == 2
    assert capsys.readouterr().err.strip() == (
        "jp-primary: configuration error: --tls-cert needs --tls-key"
    )


# -- gc and reextract -----------------------------------------------------------------------------


def test_gc_dry_run_on_an_empty_store(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gc", "--min-age", "0"]) == 0
    assert capsys.readouterr().out == (
        "0 orphan objects, 0 bytes found (dry run; --delete removes them)\n"
        "0 empty staging directories found (dry run; --delete removes them)\n"
    )


def test_reextract_of_an_unknown_job_is_refused(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reextract", "--job", "no-such-job-0000000000"]) == 1
    assert capsys.readouterr().err.strip() == "jp-primary: no job with key 'no-such-job-0000000000'"


def test_reextract_of_a_new_database_has_nothing_to_do(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.mkdir()
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["reextract", "--class", "lb"]) == 0
    assert capsys.readouterr().out == (
        "0 files, 0 values derived, 0 files with extraction problems\n"
    )


# -- ftpd -----------------------------------------------------------------------------------------


def test_ftpd_refuses_a_backend_other_than_the_filesystem(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JP_STORAGE_BACKEND", "s3")
    assert main(["ftpd"]) == 2
    assert "the FTP upload door works with the filesystem backend only" in capsys.readouterr().err


def test_ftpd_refuses_an_unmigrated_database(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.mkdir()
    assert main(["ftpd"]) == 2
    assert capsys.readouterr().err.strip() == f"jp-primary: {NOT_MIGRATED}"
