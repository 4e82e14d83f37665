"""``upload_files``: durable at return, delivered later by ``jp-primary spool send`` even when the
caller was SIGKILLed right after the call; the same files twice are stored once."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jp_primary.client import upload_files
from jp_primary.client.maildir import Maildir
from jp_primary.client.messages import FileMessage, parse
from tests.auth.served import cli_environment, run_cli

from .support import USER, Live, listing, new_jobid

JOBID = "https://lb.example.org:9000/kJ4mO8uLbQ3iP-Xw_2dfZA"

CHILD = """
import os, sys
from jp_primary.client import upload_files
path = upload_files(sys.argv[1], sys.argv[3:], spool=sys.argv[2], url=os.environ["TARGET"])
print(path, flush=True)
sys.stdin.read()  # wait for the SIGKILL
"""


def test_upload_files_spools_links_and_a_message(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.bin"
    b.parent.mkdir()
    a.write_text("alpha")
    b.write_bytes(b"\0beta")
    message = upload_files(
        JOBID, [a, b], spool=tmp_path / "spool", file_class="osb", url="http://x:1"
    )
    assert message.parent == tmp_path / "spool" / "new"
    parsed = parse(message.read_bytes())
    assert isinstance(parsed, FileMessage)
    assert parsed.file_class == "osb"
    assert parsed.jpps == "http://x:1"
    assert parsed.members == (str(a).lstrip("/"), str(b).lstrip("/"))
    a.unlink()  # the caller deletes its files right away: the spool keeps them
    assert Path(parsed.file + ".0").read_text() == "alpha"
    assert Path(parsed.file + ".1").read_bytes() == b"\0beta"


def test_nothing_is_spooled_for_a_missing_file_or_a_bad_jobid(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with pytest.raises(FileNotFoundError):
        upload_files(JOBID, [tmp_path / "missing"], spool=spool)
    with pytest.raises(ValueError, match="jobid"):
        upload_files("nonsense", [], spool=spool)
    with pytest.raises(ValueError, match="isb or osb"):
        upload_files(JOBID, [], spool=spool, file_class="lb")
    assert listing(Maildir(spool), "new") == []
    assert listing(Maildir(spool), "files") == []


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("fnf")
    service = Live(folder, f"sqlite:///{folder / 'jp.sqlite'}").start()
    try:
        yield service
    finally:
        service.stop()


def _tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


@pytest.mark.slow
def test_files_arrive_though_the_caller_was_killed_right_after(live: Live, tmp_path: Path) -> None:
    jobid = new_jobid()
    with live.client(USER) as alice:
        alice.register(jobid)
    files = []
    for i in range(3):
        path = tmp_path / f"f{i}.dat"
        path.write_bytes(os.urandom(200_000))
        files.append(path)
    spool = tmp_path / "spool"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, jobid, str(spool), *map(str, files)],
        env=cli_environment({"TARGET": live.url}),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    spooled = Path(child.stdout.readline().decode().strip())
    child.send_signal(signal.SIGKILL)  # right after the call returned
    child.wait()
    originals = {str(p).lstrip("/"): p.read_bytes() for p in files}
    for p in files:
        p.unlink()  # what the WMS purger does next
    assert spooled.exists()

    token = live.token_file()
    sent = run_cli({}, "spool", "send", "--spool", str(spool), "--token-file", str(token))
    assert sent.returncode == 0, sent.stderr
    assert "delivered 1" in sent.stderr
    with live.client(USER) as alice:
        stored = [f for f in alice.files(jobid) if f.file_class == "isb"]
        assert len(stored) == 1
        assert _tar_members(alice.read(jobid, "isb", stored[0].name)) == originals
    box = Maildir(spool)
    assert box.counts() == {"new": 0, "work": 0, "post": 0, "undeliverable": 0}
    assert listing(box, "files") == []  # the spooled copies are gone once delivered


@pytest.mark.slow
def test_the_same_files_twice_are_stored_once(live: Live, tmp_path: Path) -> None:
    jobid = new_jobid()
    with live.client(USER) as alice:
        alice.register(jobid)
    path = tmp_path / "out.log"
    path.write_text("the same bytes")
    spool = tmp_path / "spool"
    upload_files(jobid, [path], spool=spool, file_class="osb", url=live.url)
    time.sleep(0.01)
    upload_files(jobid, [path], spool=spool, file_class="osb", url=live.url)
    token = live.token_file()
    sent = run_cli({}, "spool", "send", "--spool", str(spool), "--token-file", str(token))
    assert sent.returncode == 0, sent.stderr
    assert "already stored 1" in sent.stderr
    path.write_text("other bytes, same name")
    upload_files(jobid, [path], spool=spool, file_class="osb", url=live.url)
    sent = run_cli({}, "spool", "send", "--spool", str(spool), "--token-file", str(token))
    assert sent.returncode == 0, sent.stderr
    with live.client(USER) as alice:
        names = sorted(f.name for f in alice.files(jobid) if f.file_class == "osb")
    assert len(names) == 2
    assert names[0] == ""
    assert names[1].startswith("osb.")
