"""The user CLI (``jp-primary upload get files tag attrs record``) against a live server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jp_primary.client import Client, Credentials
from tests.auth.served import run_cli

from .support import USER, Live, new_jobid, write_dump

pytestmark = pytest.mark.slow
STATUS = "http://egee.cesnet.cz/en/Schema/LB/Attributes:status"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("cli")
    service = Live(folder, f"sqlite:///{folder / 'jp.sqlite'}").start()
    try:
        yield {"JP_URL": service.url, "JP_TOKEN": service.token(USER)}
    finally:
        service.stop()


def jp(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    done = run_cli(env, *args)
    return done.returncode, done.stdout, done.stderr


def test_upload_get_files_tag_attrs_record(env: dict[str, str], tmp_path: Path) -> None:
    jobid = new_jobid()
    key = jobid.rsplit("/", 1)[1]
    dump = write_dump(tmp_path, jobid)
    with_token_file = dict(env)
    token_file = tmp_path / "token"
    token_file.write_text(with_token_file.pop("JP_TOKEN"))
    # Not registered: upload says so (404, exit 1) ...
    code, _out, err = jp(env, "upload", jobid, "lb", str(dump))
    assert code == 1
    assert "404 NotFound" in err
    with Client(env["JP_URL"], credentials=Credentials(token=env["JP_TOKEN"])) as client:
        client.register(jobid)
    code, out, err = jp(
        with_token_file, "upload", jobid, "lb", str(dump), "--token-file", str(token_file), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["sha256"]
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(300_000))
    code, out, err = jp(env, "upload", key, "osb", str(blob), "--name", "out")
    assert code == 0, err
    assert "stored osb out: 300000 bytes" in out

    code, out, _ = jp(env, "files", key)
    assert code == 0
    assert sorted(line.split("\t")[0] for line in out.splitlines()) == ["lb", "osb"]
    code, out, _ = jp(env, "files", key, "--json")
    assert {f["class"] for f in json.loads(out)} == {"lb", "osb"}

    target = tmp_path / "copy.bin"
    code, _out, err = jp(env, "get", key, "osb", "--name", "out", "-o", str(target))
    assert code == 0, err
    assert target.read_bytes() == blob.read_bytes()
    code, out, _ = jp(env, "get", jobid, "lb")
    assert code == 0
    assert out == dump.read_text()

    code, out, err = jp(env, "tag", key, "color=green", "note=a=b")
    assert code == 0, err
    assert "color=green" in out
    code, _out, err = jp(env, "tag", key, "novalue")
    assert code == 2
    assert "NAME=VALUE" in err

    code, out, _ = jp(env, "attrs", key, STATUS)
    assert out.split("\t")[:2] == [STATUS, "Done"]
    code, out, _ = jp(env, "attrs", key, "--json")
    values = {v["value"] for v in json.loads(out)["values"]}
    assert {"green", "a=b", "Done"} <= values

    code, out, _ = jp(env, "record", key)
    assert code == 0
    assert "<jr:jobRecord" in out or "jobRecord" in out


def test_errors_are_one_line_and_an_exit_status(env: dict[str, str]) -> None:
    code, out, err = jp(env, "files", new_jobid())
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "NotFound" in err
    code, _out, err = jp({"JP_URL": env["JP_URL"]}, "files", new_jobid())
    assert code == 1
    assert "401 Unauthenticated" in err
    code, _out, err = jp({"JP_URL": "http://127.0.0.1:9"}, "files", "abc", "--token", "x")
    assert code == 1
    assert "jp-primary files:" in err
