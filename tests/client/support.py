"""A live ``jp-primary serve`` for client and importer tests, and L&B dumps and maildirs.

``Live`` runs the real CLI (``migrate``, ``serve``, ``token``) on loopback; ``run_import`` and
``start_import`` run ``jp-primary import`` as a subprocess, the way an operator does.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jp_primary.client import Client, Credentials
from jp_primary.client.maildir import Maildir
from jp_primary.client.messages import FileMessage, format_file_message
from jp_primary.testing.lbdumps import generate_job
from tests.auth.served import CLI, ServeProcess, cli_environment, run_cli

LB_IDENTITY = "/DC=org/DC=example/O=JP Test/CN=host/lb.example.org"
USER = "/DC=org/DC=example/O=JP Test/CN=Alice Smith/CN=12345"


@dataclass
class Live:
    folder: Path
    database_url: str
    args: Sequence[str] = ()
    settings: dict[str, str] = field(default_factory=dict)
    server: ServeProcess | None = None

    def start(self, port: int | None = None) -> Live:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.settings = {"JP_HOME": str(self.folder / "home"), "JP_DATABASE_URL": self.database_url}
        done = run_cli(self.settings, "migrate")
        assert done.returncode == 0, done.stderr
        self.server = ServeProcess(self.settings, self.folder / "serve.log", self.args)
        if port is not None:
            self.server.port = port
        self.server.launch()
        self.server.wait_ready()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def token(self, subject: str, *roles: str) -> str:
        args = ["token", "--subject", subject]
        for role in roles:
            args += ["--role", role]
        done = run_cli(self.settings, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def client(self, subject: str = USER, *roles: str) -> Client:
        return Client(self.url, credentials=Credentials(token=self.token(subject, *roles)))

    def token_file(self, subject: str = LB_IDENTITY, *roles: str) -> Path:
        path = self.folder / f"token-{abs(hash((subject, roles)))}"
        path.write_text(self.token(subject, *(roles or ("trusted",))))
        return path


def new_jobid(rng: random.Random | None = None) -> str:
    rng = rng or random.Random()  # noqa: S311 - test data
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "https://lb.example.org:9000/" + "".join(rng.choice(alphabet) for _ in range(22))


def write_dump(
    folder: Path, jobid: str, scenario: str = "done", seed: int = 0, padding: int = 0
) -> Path:
    """A generated L&B dump of ``jobid`` (about 10 kB for ``done``)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = generate_job(random.Random(seed), scenario, jobid=jobid, padding=padding)  # noqa: S311
    path = folder / f"{jobid.rsplit('/', 1)[-1]}.dump"
    path.write_text("\n".join(lines) + "\n")
    return path


def queue_dump(box: Maildir, jobid: str, path: Path) -> Path:
    return box.deliver(format_file_message(FileMessage(jobid=jobid, file=str(path))))


def import_args(live: Live, maildir: Path, *extra: str) -> list[str]:
    token = live.token_file()
    return [
        "import",
        "--maildir",
        str(maildir),
        "--url",
        live.url,
        "--token-file",
        str(token),
        *extra,
    ]


def run_import(live: Live, maildir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli({}, *import_args(live, maildir, "--once", *extra))


def start_import(args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [*CLI, *args],
            env=cli_environment({}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def listing(box: Maildir, sub: str) -> list[str]:
    return sorted(p.name for p in box.dir(sub).iterdir())
