"""A real ``jp-primary serve`` and Debian's headless Chromium, driven by Playwright.

``playwright install`` downloads its own browser builds, which cannot work here: the tests
launch the Chromium of Debian's ``chromium`` package (``scripts/ensure-chromium.sh``, run by
``make test``). Without it they skip, unless ``JP_REQUIRE_BROWSER=1`` (``.ci/run``) makes that a
failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from jp_primary.auth.identity import Role
from jp_primary.auth.tokens import ServiceTokens, load_or_create_key

REQUIRE_BROWSER = "JP_REQUIRE_BROWSER"
CHROMIUM = "/usr/bin/chromium"


def chromium_or_skip() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if path is None:
        reason = "Debian's chromium is not installed (sh scripts/ensure-chromium.sh)"
        if os.environ.get(REQUIRE_BROWSER) == "1":
            pytest.fail(f"{reason}; {REQUIRE_BROWSER}=1 requires it")
        pytest.skip(reason)
    return path


@dataclass
class Served:
    base_url: str
    tokens: ServiceTokens

    def auth(self, subject: str, *roles: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(subject, roles)}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``jp-primary serve`` on loopback with an SQLite database, as an operator runs it."""
    home = tmp_path_factory.mktemp("serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JP_")}
    env |= {"JP_HOME": str(home), "JP_DATABASE_URL": f"sqlite:///{home / 'jp.sqlite'}"}
    cli = [sys.executable, "-m", "jp_primary.cli"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    port = _free_port()
    with (home / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jp-primary serve exited: {(home / 'serve.log').read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("jp-primary serve did not become healthy within 60 s")
            time.sleep(0.1)
        yield Served(base, ServiceTokens(load_or_create_key(home / "token.key")))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],  # root in a container
        )
        try:
            yield launched
        finally:
            launched.close()
