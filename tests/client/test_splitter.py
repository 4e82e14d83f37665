"""``jp-primary lb split-dump``: one file per job and one dump message each, streaming."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from jp_primary.client.maildir import Maildir
from jp_primary.client.messages import FileMessage, parse
from jp_primary.importer.splitter import split_dump
from jp_primary.testing.lbdumps import generate_job
from tests.auth.served import CLI, cli_environment

from .support import new_jobid


def _purge_dump(path: Path, jobs: dict[str, list[str]], *, interleave: bool = False) -> None:
    lines: list[str] = []
    if interleave:
        queues = [list(v) for v in jobs.values()]
        while any(queues):
            for q in queues:
                if q:
                    lines.append(q.pop(0))
    else:
        for v in jobs.values():
            lines.extend(v)
    lines.insert(3, "garbage without a jobid")
    path.write_text("".join(f"DG.ARRIVED=20080928054721.000000 {line}\n" for line in lines))


def _jobs(n: int) -> dict[str, list[str]]:
    rng = random.Random(7)
    jobs = {}
    for i in range(n):
        jobid = new_jobid(rng)
        jobs[jobid] = generate_job(random.Random(i), "done", jobid=jobid)
    return jobs


@pytest.mark.parametrize("unsorted", [False, True])
def test_split_into_one_file_and_message_per_job(tmp_path: Path, unsorted: bool) -> None:
    jobs = _jobs(5)
    dump = tmp_path / "purge_20080928"
    _purge_dump(dump, jobs, interleave=unsorted)
    box = Maildir(tmp_path / "md")
    report = split_dump(dump, tmp_path / "out", box, unsorted=unsorted)
    assert report.jobs == 5
    assert report.skipped == 1
    assert report.skipped_lines == [4]
    messages = [parse(p.read_bytes()) for p in box.dir("new").iterdir()]
    assert sorted(m.jobid for m in messages) == sorted(jobs)
    for msg in messages:
        assert isinstance(msg, FileMessage)
        assert msg.file_class == "lb"
        body = Path(msg.file).read_text().splitlines()
        assert [line.split(" ", 1)[1] for line in body] == jobs[msg.jobid]
        assert Path(msg.file).name.startswith(msg.jobid.rsplit("/", 1)[1] + ".")


def test_sorted_mode_on_an_interleaved_dump_keeps_every_line(tmp_path: Path) -> None:
    """A dump that is not clustered, split without --unsorted: more files, no line lost."""
    jobs = _jobs(3)
    dump = tmp_path / "purge"
    _purge_dump(dump, jobs, interleave=True)
    report = split_dump(dump, tmp_path / "out", None)
    assert report.jobs > 3
    total = sum(len(p.read_text().splitlines()) for p in (tmp_path / "out").iterdir())
    assert total == sum(len(v) for v in jobs.values())


def _max_rss_mib(dump: Path, folder: Path) -> tuple[str, float]:
    """Run ``jp-primary lb split-dump`` on ``dump``; its stderr and peak RSS in MiB."""
    command = [*CLI, "lb", "split-dump", str(dump), "--out", str(folder / "out")]
    command += ["--maildir", str(folder / "md")]
    proc = subprocess.Popen(command, env=cli_environment({}), stderr=subprocess.PIPE)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, stderr
    return stderr, usage.ru_maxrss / 1024  # Linux: kilobytes


@pytest.mark.slow
def test_a_1_gb_purge_dump_splits_in_constant_memory(tmp_path: Path) -> None:
    rng = random.Random(3)
    placeholder = "https://lb.example.org:9000/PLACEHOLDERxxxxxxxxxxxx"
    template = generate_job(random.Random(1), "done", jobid=placeholder, padding=250)
    body = "".join(f"DG.ARRIVED=20080928054721.000000 {line}\n" for line in template)
    small = tmp_path / "purge_small"
    small.write_text(body)
    baseline = _max_rss_mib(small, tmp_path / "small")[1]
    dump = tmp_path / "purge_big"
    jobs = 0
    with dump.open("w") as out:
        while out.tell() < 1 << 30:
            out.write(body.replace(placeholder, new_jobid(rng)))
            jobs += 1
            if jobs == 5:
                out.write("a line with no jobid\n")
    size = dump.stat().st_size
    stderr, rss_mib = _max_rss_mib(dump, tmp_path)
    print(
        f"split {size / 2**30:.2f} GiB, {jobs} jobs, max RSS {rss_mib:.0f} MiB "
        f"(one small job: {baseline:.0f} MiB)",
        file=sys.stderr,
    )
    # Constant memory: splitting 1 GiB costs at most a few MiB more than splitting one job.
    assert rss_mib < baseline + 32, f"max RSS {rss_mib:.0f} MiB vs {baseline:.0f} MiB"
    assert f"{jobs} jobs, 1 lines without a DG.JOBID" in stderr
    assert "line " in stderr  # the skipped line is named by number
    assert len(os.listdir(tmp_path / "md" / "new")) == jobs
    out_size = sum(p.stat().st_size for p in (tmp_path / "out").iterdir())
    assert out_size == size - len("a line with no jobid\n")
