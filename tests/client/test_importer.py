"""``jp-primary import`` against ``jp-primary serve``, both real processes: dumps (generated and
the real L&B ones), registrations, a SIGKILL midway, the server down for a while, malformed
messages, SIGTERM."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from jp_primary.client import BulkUpload, Client, Credentials, NotFound
from jp_primary.client.errors import APIError
from jp_primary.client.maildir import Maildir
from jp_primary.client.messages import format_registration
from jp_primary.client.models import BulkFileResult, CommittedFile
from jp_primary.importer.daemon import Importer, Options
from jp_primary.importer.lbowner import regjob_owner
from tests.auth.served import free_port
from tests.helpers import shared_data_or_skip

from .support import (
    LB_IDENTITY,
    USER,
    Live,
    import_args,
    listing,
    new_jobid,
    queue_dump,
    run_import,
    start_import,
    wait_for,
    write_dump,
)

pytestmark = pytest.mark.slow
STATUS = "http://egee.cesnet.cz/en/Schema/LB/Attributes:status"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("importer")
    service = Live(folder, f"sqlite:///{folder / 'jp.sqlite'}").start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def reader(live: Live) -> Iterator[Client]:
    with live.client("/CN=auditor", "admin") as client:
        yield client


def queue_dumps(box: Maildir, folder: Path, count: int) -> list[str]:
    """``count`` generated dumps of fresh jobs queued in ``box``; their jobids."""
    jobs = [new_jobid() for _ in range(count)]
    for i, jobid in enumerate(jobs):
        queue_dump(box, jobid, write_dump(folder, jobid, seed=i))
    return jobs


def lb_files(client: Client, jobid: str) -> list[str]:
    try:
        return [f.sha256 for f in client.files(jobid) if f.file_class == "lb"]
    except NotFound:
        return []


def test_generated_and_real_dumps_become_attributes(
    live: Live, reader: Client, tmp_path: Path
) -> None:
    box = Maildir(tmp_path / "md")
    generated = {}
    for i in range(5):
        jobid = new_jobid()
        generated[jobid] = queue_dump(box, jobid, write_dump(tmp_path / "dumps", jobid, seed=i))
    registered = new_jobid()
    box.deliver(format_registration(registered, USER))
    real = {}
    folder = shared_data_or_skip("data", "lb", pattern="*.lb")
    for source in sorted(folder.glob("*.lb")):
        owner = regjob_owner(source)
        text = source.read_text(errors="replace")
        if 'DG.JOBID="https://' not in text or owner is None:
            continue  # the perf templates carry no jobids
        jobid = text.split('DG.JOBID="', 1)[1].split('"', 1)[0]
        copy = tmp_path / "real" / source.name
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, copy)
        real[jobid] = (owner, hashlib.sha256(copy.read_bytes()).hexdigest())
        queue_dump(box, jobid, copy)
    assert real, "no real dump with a jobid"

    done = run_import(live, box.root)
    assert done.returncode == 0, done.stderr
    assert "undeliverable 0" in done.stderr
    assert listing(box, "new") == []
    assert listing(box, "post") == []
    assert listing(box, "work") == []
    for jobid in generated:
        assert [v.value for v in reader.attributes(jobid, [STATUS]).values] == ["Done"]
        assert reader.job(jobid).owner.startswith("/")  # the dump's DG.USER
    for jobid, (owner, digest) in real.items():
        assert reader.job(jobid).owner == owner
        assert lb_files(reader, jobid) == [digest]
        assert reader.attributes(jobid, [STATUS]).values
    assert reader.job(registered).owner == USER
    # Delivered dump files are removed, as L&B's importer does.
    assert not any((tmp_path / "dumps").iterdir())


def test_the_same_dump_twice_is_stored_once_other_bytes_get_a_new_name(
    live: Live, reader: Client, tmp_path: Path
) -> None:
    box = Maildir(tmp_path / "md")
    jobid = new_jobid()
    dump = write_dump(tmp_path / "a", jobid)
    copy = tmp_path / "b" / "copy"
    copy.parent.mkdir()
    shutil.copyfile(dump, copy)
    queue_dump(box, jobid, dump)
    queue_dump(box, jobid, copy)
    assert run_import(live, box.root).returncode == 0
    assert len(lb_files(reader, jobid)) == 1
    longer = write_dump(tmp_path / "c", jobid, padding=3)
    queue_dump(box, jobid, longer)
    done = run_import(live, box.root)
    assert done.returncode == 0, done.stderr
    files = sorted((f.name, f.sha256) for f in reader.files(jobid))
    assert len(files) == 2
    assert files[0][0] == ""
    assert files[1][0].startswith("lb.")


def test_sigkill_midway_then_restart_loses_and_duplicates_nothing(
    live: Live, reader: Client, tmp_path: Path
) -> None:
    box = Maildir(tmp_path / "md")
    jobs = queue_dumps(box, tmp_path / "dumps", 150)
    proc = start_import(import_args(live, box.root, "--workers", "4"), tmp_path / "import.log")
    try:
        # Delivered messages leave work/ (claimed ones wait there, many at once for bulk requests).
        wait_for(
            lambda: len(listing(box, "new")) + len(listing(box, "work")) < 140,
            what="some deliveries",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = len(listing(box, "new")) + len(listing(box, "work"))
    assert 0 < left < 150, "the kill should land midway"
    done = run_import(live, box.root)
    assert done.returncode == 0, done.stderr
    assert "queued again" in done.stderr or not listing(box, "work")
    assert box.counts() == {"new": 0, "work": 0, "post": 0, "undeliverable": 0}
    assert all(len(lb_files(reader, jobid)) == 1 for jobid in jobs)


def test_server_down_messages_wait_in_post_then_arrive(tmp_path: Path) -> None:
    port = free_port()
    service = Live(tmp_path / "svc", f"sqlite:///{tmp_path / 'down.sqlite'}")
    service.start(port)
    token = service.token_file()
    service.stop()
    box = Maildir(tmp_path / "md")
    jobs = queue_dumps(box, tmp_path / "dumps", 3)
    args = ["import", "--maildir", str(box.root), "--url", f"http://127.0.0.1:{port}"]
    args += [
        "--token-file",
        str(token),
        "--retry-first",
        "0.5",
        "--retry-max",
        "1",
        "--poll",
        "0.2",
    ]
    proc = start_import(args, tmp_path / "import.log")
    try:
        wait_for(lambda: len(listing(box, "post")) == 3, what="three messages in post/")
        assert listing(box, "new") == []
        service.start(port)
        # Drained means delivered: a retried message passes through work/ on its way out.
        idle = {"new": 0, "work": 0, "post": 0, "undeliverable": 0}
        wait_for(lambda: box.counts() == idle, what="every message delivered")
        with service.client("/CN=auditor", "admin") as reader:
            assert all(len(lb_files(reader, j)) == 1 for j in jobs)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        service.stop()
    log = (tmp_path / "import.log").read_text()
    assert "retry" in log
    assert "ConnectionFailed" in log
    assert "stopped: delivered 3" in log


def test_malformed_messages_go_to_undeliverable_with_a_reason(
    live: Live, reader: Client, tmp_path: Path
) -> None:
    box = Maildir(tmp_path / "md")
    bad = {
        "garbage": os.urandom(300) + b"\0",
        "empty": b"",
        "missing-file": f"jobid {new_jobid()}\nfile {tmp_path / 'nowhere'}\n".encode(),
        "bad-jobid": f"jobid https://lb.example.org:9000/not a key\nfile {tmp_path}\n".encode(),
        "not-a-url": b"jobid 12345\nfile /etc/hostname\n",
    }
    for name, body in bad.items():
        box.deliver(body, name)
    good = new_jobid()
    queue_dump(box, good, write_dump(tmp_path / "dumps", good))
    proc = start_import(import_args(live, box.root, "--poll", "0.2"), tmp_path / "import.log")
    try:
        wait_for(lambda: box.counts()["undeliverable"] == len(bad) and not listing(box, "new"))
        wait_for(lambda: len(lb_files(reader, good)) == 1, what="the good message delivered")
        later = new_jobid()  # the daemon keeps running: a message queued now is delivered too
        queue_dump(box, later, write_dump(tmp_path / "dumps", later))
        wait_for(lambda: len(lb_files(reader, later)) == 1, what="a later message delivered")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reasons = {name: (box.dir("undeliverable") / f"{name}.reason").read_text() for name in bad}
    assert "binary" in reasons["garbage"] or "UTF-8" in reasons["garbage"]
    assert "empty" in reasons["empty"]
    assert "does not exist" in reasons["missing-file"]
    assert "not a jobid" in reasons["bad-jobid"]
    assert "not a jobid" in reasons["not-a-url"]


def test_a_second_importer_on_the_same_maildir_is_refused(live: Live, tmp_path: Path) -> None:
    box = Maildir(tmp_path / "md")
    proc = start_import(import_args(live, box.root), tmp_path / "first.log")
    try:
        wait_for(
            lambda: (
                "jp-primary import" in _safe_read(tmp_path / "first.log")
                or (box.root / ".importer.lock").exists()
            ),
            what="the first importer",
        )
        wait_for(lambda: _locked(box.root / ".importer.lock"), what="the lock taken")
        second = run_import(live, box.root)
        assert second.returncode != 0
        assert "another importer" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _safe_read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _locked(path: Path) -> bool:
    import fcntl

    if not path.exists():
        return False
    with path.open("ab") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_lb_identity_is_the_trusted_importer(live: Live) -> None:
    """The importer's token (support.Live.token_file) is the L&B host's, with the trusted role."""
    with live.client(LB_IDENTITY, "trusted") as client:
        assert "trusted" in client.whoami().roles


def test_sigterm_finishes_or_returns_what_is_in_flight(
    live: Live, reader: Client, tmp_path: Path
) -> None:
    box = Maildir(tmp_path / "md")
    jobs = queue_dumps(box, tmp_path / "dumps", 120)
    # Bulk requests of 8: 15 for 4 workers, so some are still queued when SIGTERM comes.
    args = import_args(live, box.root, "--workers", "4", "--bulk", "8")
    proc = start_import(args, tmp_path / "import.log")
    try:
        wait_for(lambda: len(listing(box, "new")) < 90, what="some deliveries")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0
    assert listing(box, "work") == []
    waiting = {p.name for p in box.dir("new").iterdir()}
    assert 0 < len(waiting) < 120
    stored = [j for j in jobs if lb_files(reader, j)]
    assert len(stored) + len(waiting) == 120  # each message delivered or back in new/, not both
    done = run_import(live, box.root)
    assert done.returncode == 0, done.stderr
    assert all(len(lb_files(reader, j)) == 1 for j in jobs)


class _CountingClient(Client):
    """A real client that counts the requests of each kind (and can play an older service
    without the bulk route)."""

    def __init__(self, url: str, token: str, bulk_route: bool = True) -> None:
        super().__init__(url, credentials=Credentials(token=token))
        self.bulk_route = bulk_route
        self.bulk_sizes: list[int] = []
        self.single_puts = 0

    def put_files_bulk(self, items: Sequence[BulkUpload], **kw: Any) -> list[BulkFileResult]:
        self.bulk_sizes.append(len(items))
        if not self.bulk_route:
            raise APIError(404, "NotFound", "Not Found", {})
        return super().put_files_bulk(items, **kw)

    def put_file(self, *args: Any, **kw: Any) -> CommittedFile:
        self.single_puts += 1
        return super().put_file(*args, **kw)


def _import_in_process(box: Maildir, client: Client, bulk: int = 32) -> Importer:
    importer = Importer(box, lambda _jpps: client, Options(workers=4, once=True, bulk=bulk))
    assert importer.run(install_signals=False) == 0
    return importer


def test_waiting_dumps_go_in_bulk_requests_and_refusals_one_by_one(
    live: Live, reader: Client, tmp_path: Path
) -> None:
    box = Maildir(tmp_path / "md")
    jobs = queue_dumps(box, tmp_path / "dumps", 40)
    # Other bytes already stored under the name of one dump: the bulk item is refused (409) and
    # the one-by-one way stores the dump under its derived name.
    taken = jobs[7]
    with live.client(LB_IDENTITY, "trusted") as lb:
        lb.register(taken, USER)
        lb.put_file(taken, "lb", b"other bytes")
    token = live.token(LB_IDENTITY, "trusted")
    client = _CountingClient(live.url, token)
    with client:
        importer = _import_in_process(box, client, bulk=16)
    assert sorted(client.bulk_sizes, reverse=True) == [16, 16, 8]
    assert client.single_puts == 2  # the refused dump: its name (409), then the derived name
    assert importer.counts.delivered == 40
    assert importer.counts.registered == 39
    assert box.counts() == {"new": 0, "work": 0, "post": 0, "undeliverable": 0}
    assert all(len(lb_files(reader, j)) == 1 for j in jobs if j != taken)
    names = sorted(f.name for f in reader.files(taken))
    assert names[0] == ""
    assert names[1].startswith("lb.")


def test_a_service_without_the_bulk_route_gets_the_dumps_one_by_one(
    live: Live, reader: Client, tmp_path: Path
) -> None:
    box = Maildir(tmp_path / "md")
    jobs = queue_dumps(box, tmp_path / "dumps", 10)
    token = live.token(LB_IDENTITY, "trusted")
    client = _CountingClient(live.url, token, bulk_route=False)
    with client:
        importer = _import_in_process(box, client)
    assert client.bulk_sizes == [10]  # asked once; then one by one
    assert client.single_puts == 10
    assert importer.counts.delivered == 10
    assert all(len(lb_files(reader, j)) == 1 for j in jobs)
    assert box.counts() == {"new": 0, "work": 0, "post": 0, "undeliverable": 0}
