"""Run a real ``uvicorn`` subprocess with ``tls_uvicorn_kwargs`` on loopback, for any test suite.

``run_tls_server(app="module:attr", app_dir=..., tls=dict(tls_cert=..., ca_file=...), env=...)``
yields the base URL and stops the process (by its own PID) afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_RUNNER = """
import json, sys
import uvicorn
from jp_primary.auth.tlsserver import tls_uvicorn_kwargs
args = json.loads(sys.argv[1])
uvicorn.run(args["app"], host="127.0.0.1", port=args["port"], app_dir=args["app_dir"],
            log_level="warning", **tls_uvicorn_kwargs(**args["tls"]), **args["uvicorn"])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"TLS test server exited with {proc.returncode}: {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"TLS test server did not listen on {port} within {timeout}s")


@contextmanager
def run_tls_server(
    app: str,
    app_dir: Path,
    tls: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    uvicorn_kwargs: Mapping[str, Any] | None = None,
) -> Iterator[str]:
    """Start uvicorn serving ``app`` over TLS; yield ``https://127.0.0.1:<port>``.

    ``tls`` holds the arguments of ``tls_uvicorn_kwargs``; ``uvicorn_kwargs`` more settings of
    ``uvicorn.run`` (JSON-serialisable, e.g. ``{"workers": 2}``).
    """
    port = free_port()
    args = {
        "app": app,
        "app_dir": str(app_dir),
        "port": port,
        "tls": {**tls},
        "uvicorn": {**(uvicorn_kwargs or {})},
    }
    args["tls"] = {k: str(v) if isinstance(v, Path) else v for k, v in args["tls"].items()}
    # stderr goes to a file, not a pipe: a chatty server never blocks on a full pipe.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _RUNNER, json.dumps(args)],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            _wait_listening(port, proc, log, timeout)
            yield f"https://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
