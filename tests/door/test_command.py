"""``jp-primary ftpd`` as operators run it: a real process serving grants from the database."""

from __future__ import annotations

import ftplib
import subprocess
import sys
import time

import pytest

from tests.backends.servers import free_port
from tests.helpers import Api


def test_ftpd_command_serves_and_refuses_unknown_users(api: Api) -> None:
    port = free_port()
    env = {
        "JP_HOME": str(api.settings.home),
        "JP_DATABASE_URL": api.settings.database_url,
        "JP_FTPD_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "jp_primary.cli", "ftpd"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ftp = ftplib.FTP()  # noqa: S321  (the door under test speaks FTP)
                ftp.connect("127.0.0.1", port, timeout=5)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        with ftp, pytest.raises(ftplib.error_perm):
            ftp.login("jpup-unknown", "wrong")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
