"""Load run: a mixed workload on PostgreSQL while 1,000 stalled connections are held open.

``jp-primary serve --workers 2`` runs on a fresh PostgreSQL database (created for the run,
dropped afterwards). Prepared first: ``--jobs`` jobs, each with a committed L&B dump of about
``--dump-kb`` kB made by the project's generator (``jp_primary.testing.lbdumps``). After a
warm-up, a control runs without stalled connections (``GET /healthz``, then the mixed load, for
``--control-duration`` s). Then ``bench/stall.py`` opens ``--stalled`` connections that each
send half a request header and nothing more (closed ones are reopened), and, while they are
held:

1. baseline: ``wrk`` on ``GET /healthz`` of the same server (``--baseline-duration`` s);
2. measured: ``wrk`` with ``bench/load.lua`` (``--duration`` s, ``--connections``): 70 %
   ``GET /v1/jobs/{key}/attributes``, 20 % ``POST /v1/jobs/{key}/tags``, 10 % ``POST /v1/jobs``
   each followed by ``PUT /v1/jobs/{key}/files/lb`` of a generated dump with the new jobid.

Printed: throughput and latency of both, their ratio, the normal clients' errors (non-2xx
answers by status, socket errors, timeouts: the target is zero), what happened to the
stalled connections, and the tracebacks in the server's log. The exit status is 0 when no normal
request failed and the server is still running, 1 otherwise. The server's soft open-file limit
is set to ``--server-nofile`` (1024) at start; this process raises its own for its children.

    .venv/bin/python bench/load.py                      # 60 s at 64 connections, 1,000 stalled
    .venv/bin/python bench/load.py --duration 10 --baseline-duration 5 --control-duration 4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from results import Figure, record
from serverctl import (
    BenchHome,
    Server,
    bench_home,
    cleanup_on_sigterm,
    free_port,
    require_tool,
    stop_server,
    throwaway_postgres,
)
from sqlalchemy import create_engine, text

from jp_primary.testing.lbdumps import WORKLOAD_MIX, generate_job

BENCH_DIR = Path(__file__).resolve().parent
LUA = BENCH_DIR / "load.lua"
STALL = BENCH_DIR / "stall.py"
PLACEHOLDER = "JPBENCHLOADPLACEHOLDER"  # 22 characters, like an L&B jobid's unique part
JOBID_PREFIX = "https://lb.example.org:9000/"
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class WrkRun:
    data: dict[str, Any]

    @property
    def requests(self) -> int:
        return int(self.data["requests"])

    @property
    def seconds(self) -> float:
        return float(self.data["duration_us"]) / 1e6

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def socket_errors(self) -> int:
        return sum(int(self.data[k]) for k in ("connect", "read", "write", "timeout"))

    @property
    def bad_statuses(self) -> dict[str, int]:
        """Answers that were not 2xx, by status code."""
        statuses: dict[str, int] = self.data["statuses"]
        return {code: n for code, n in sorted(statuses.items()) if not code.startswith("2")}

    @property
    def errors(self) -> int:
        return self.socket_errors + sum(self.bad_statuses.values())

    def ms(self, percentile: str) -> float:
        return float(self.data[f"{percentile}_us"]) / 1000


def dump_templates(count: int, size: int, seed: int) -> list[str]:
    """``count`` generated single-job dumps of about ``size`` bytes, scenarios mixed as the
    generator's benchmark workload mixes them; the jobid's unique part is PLACEHOLDER."""
    rng = random.Random(seed)  # reproducible test data, not secrets
    names = [name for name, _ in WORKLOAD_MIX]
    weights = [weight for _, weight in WORKLOAD_MIX]
    jobid = JOBID_PREFIX + PLACEHOLDER
    templates = []
    while len(templates) < count:
        scenario = rng.choices(names, weights)[0]
        job_seed = rng.getrandbits(64)

        def build(padding: int, job_seed: int = job_seed, scenario: str = scenario) -> str:
            job_rng = random.Random(job_seed)
            lines = generate_job(job_rng, scenario, jobid=jobid, padding=padding)
            return "\n".join(lines) + "\n"

        padding = 0
        dump = build(padding)
        if len(dump) > size * 1.2:
            continue  # this scenario alone is larger than the size asked for
        for _ in range(4):  # Pending events pad the dump; a few steps settle the size
            if abs(len(dump) - size) < size * 0.05:
                break
            per_line = len(build(padding + 10)) - len(dump)
            padding = max(0, padding + round((size - len(dump)) * 10 / max(per_line, 1)))
            dump = build(padding)
        templates.append(dump)
    return templates


def raise_open_file_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@contextlib.contextmanager
def jp_serve(home: BenchHome, workers: int, nofile: int | None) -> Iterator[Server]:
    """``jp-primary serve --workers N`` on a free port, in its own process group; with
    ``nofile``, its soft open-file limit is set to that (as a service manager would)."""
    port = free_port()
    command = [
        sys.executable, "-m", "jp_primary.cli", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip

    def limit() -> None:
        if nofile is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

    log = (home.path / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(
        command,
        env=home.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=limit,  # no threads run in this process yet
    )
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jp-primary serve exited with status {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("jp-primary serve did not answer /healthz in time")
            time.sleep(0.2)
        yield server
    finally:
        stop_server(process)
        log.close()


def prepare_jobs(server: Server, home: BenchHome, templates: list[str], count: int) -> list[str]:
    """Register ``count`` jobs and upload a dump to each; their keys."""
    keys = []
    headers = {"Authorization": f"Bearer {home.token}"}
    nonce = secrets.token_hex(3)
    with httpx.Client(base_url=server.url, headers=headers, timeout=60.0) as client:
        for index in range(count):
            unique = f"prep{nonce}{index:012d}"[:22]
            answer = client.post("/v1/jobs", json={"jobid": JOBID_PREFIX + unique})
            answer.raise_for_status()
            key = str(answer.json()["key"])
            dump = templates[index % len(templates)].replace(PLACEHOLDER, unique)
            stored = client.put(
                f"/v1/jobs/{key}/files/lb",
                content=dump.encode(),
                headers={"Content-Type": "text/plain"},
            )
            if stored.status_code != 201:
                status = stored.status_code
                raise RuntimeError(f"preparing: the upload answered {status}: {stored.text}")
            if index == 0:
                extraction = stored.json().get("extraction", {})
                values, problems = extraction.get("values", []), extraction.get("errors", [])
                print(
                    f"  first prepared dump: {len(dump)} bytes, {len(values)} values derived, "
                    f"{len(problems)} problems"
                )
            keys.append(key)
    return keys


@contextlib.contextmanager
def stalled(port: int, count: int) -> Iterator[dict[str, Any]]:
    """``bench/stall.py`` holding ``count`` connections; yields a dict that holds its READY
    line under "ready" at once and its final summary under "summary" after the block."""
    process = subprocess.Popen(
        [sys.executable, str(STALL), "--port", str(port), "--count", str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    info: dict[str, Any] = {}
    try:
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"stall.py did not start: {line!r}")
        info["ready"] = json.loads(line.removeprefix("READY "))
        yield info
    finally:
        try:  # communicate() closes its standard input: that asks it to stop and report
            out, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        for text_line in out.splitlines():
            if text_line.startswith("STALL_JSON "):
                info["summary"] = json.loads(text_line.removeprefix("STALL_JSON "))


def run_wrk(
    url: str, mode: str, seconds: float, args: argparse.Namespace, env: dict[str, str]
) -> WrkRun:
    command = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s",
        "--timeout", "10s", "-s", str(LUA), url, "--", mode, secrets.token_hex(2),
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    return WrkRun(json.loads(line.removeprefix("WRK_JSON ")))


def count_rows(database_url: str) -> tuple[int, int]:
    """Jobs and committed lb files in the database."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            jobs = int(conn.execute(text("SELECT count(*) FROM jobs")).scalar_one())
            files = conn.execute(text("SELECT count(*) FROM files WHERE file_class = 'lb'"))
            return jobs, int(files.scalar_one())
    finally:
        engine.dispose()


def open_files(pid: int) -> dict[int, int]:
    """Open file descriptors of the server's process and its workers (pid -> count)."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:  # the parent's pid
                pids.append(int(stat.parent.name))
    counts = {}
    for each in pids:
        with contextlib.suppress(OSError):
            counts[each] = sum(1 for _ in Path(f"/proc/{each}/fd").iterdir())
    return counts


def log_problems(home: Path) -> dict[str, int]:
    """What the server logged as going wrong: each traceback by its exception (the last line
    of the traceback), and lines that say the open-file limit was reached."""
    found: dict[str, int] = {}
    for log in home.glob("serve-*.log"):
        in_traceback = False
        for line in log.read_text(errors="replace").splitlines():
            if "Too many open files" in line:
                found["Too many open files"] = found.get("Too many open files", 0) + 1
            if line.startswith("Traceback"):
                in_traceback = True
            elif in_traceback and line and not line.startswith(" "):
                in_traceback = False
                exception = line.split(":", 1)[0]
                found[exception] = found.get(exception, 0) + 1
    return found


def describe(run: WrkRun) -> str:
    return (
        f"{run.rate:8.0f} req/s ({run.requests} in {run.seconds:.1f} s), latency p50 "
        f"{run.ms('p50'):.1f} ms, p90 {run.ms('p90'):.1f} ms, p99 {run.ms('p99'):.1f} ms, "
        f"p99.9 {run.ms('p999'):.1f} ms, max {run.ms('max'):.1f} ms"
    )


def describe_errors(run: WrkRun) -> str:
    d = run.data
    sockets = ", ".join(f"{k} {d[k]}" for k in ("connect", "read", "write", "timeout"))
    bad = run.bad_statuses
    statuses = ", ".join(f"{code}: {n}" for code, n in bad.items()) or "none"
    return f"{run.errors} (non-2xx answers: {statuses}; socket errors: {sockets})"


def report(
    bare: WrkRun,
    mixed: WrkRun,
    control: tuple[WrkRun, WrkRun] | None,
    stall: dict[str, Any],
    args: argparse.Namespace,
) -> bool:
    print(
        f"\n[jp-primary serve --workers {args.workers}, PostgreSQL, wrk -t{args.threads} "
        f"-c{args.connections}]"
    )
    if control is not None:
        print("  without stalled connections (control):")
        print(f"    GET /healthz:   {describe(control[0])}")
        print(f"    mixed workload: {describe(control[1])}")
        print(f"    errors: healthz {describe_errors(control[0])}")
        print(f"            mixed {describe_errors(control[1])}")
    print(f"  while {args.stalled} stalled connections are held:")
    print(f"    GET /healthz (baseline): {describe(bare)}")
    print(f"      errors: {describe_errors(bare)}")
    print(f"    mixed workload:          {describe(mixed)}")
    print(f"      errors: {describe_errors(mixed)}")
    sent = mixed.data["sent"]
    print(
        "      requests sent: "
        + ", ".join(f"{k} {sent.get(k, 0)}" for k in ("read", "tag", "register", "upload"))
        + f"; registrations answered 201: {mixed.data['registered']}, "
        f"uploads answered 201: {mixed.data['uploads_ok']} (the rest were in flight at the end)"
    )
    ratio = mixed.rate / bare.rate
    p99_ratio = mixed.ms("p99") / max(bare.ms("p99"), 1e-3)
    print(f"  throughput mixed / bare = {ratio:.2f}; p99 mixed / bare = {p99_ratio:.1f}x")
    ready = stall.get("ready", {})
    summary = stall.get("summary", {})
    print(f"  stalled connections: open at start {ready.get('open')}; {summary}")
    runs = [bare, mixed, *(control or ())]
    errors = sum(run.errors for run in runs)
    verdict = "met" if errors == 0 else "NOT MET"
    print(f"  normal clients' errors, all runs: {errors} (target 0: {verdict})")
    label = f"{args.workers} workers, PG, c{args.connections}, {args.stalled} stalled"
    figures = [
        Figure("load", f"mixed req/s vs GET /healthz ({label})", round(mixed.rate, 1), "req/s",
               round(bare.rate, 1), round(ratio, 3)),
        Figure("load", "mixed p99 latency vs GET /healthz p99 (stalled held)",
               round(mixed.ms("p99"), 1), "ms", round(bare.ms("p99"), 1), round(p99_ratio, 2)),
    ]  # fmt: skip
    if control is not None:
        figures.append(
            Figure("load", "mixed req/s with stalled connections vs without",
                   round(mixed.rate, 1), "req/s", round(control[1].rate, 1),
                   round(mixed.rate / control[1].rate, 3))
        )  # fmt: skip
    figures += [
        Figure("load", "errors of the normal clients (every run)", errors, "errors",
               target="= 0", met=errors == 0),
        Figure("load", "stalled connections open at the end", summary.get("open_at_end"),
               "conns", float(args.stalled)),
    ]  # fmt: skip
    record(*figures)
    return errors == 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="mixed load, seconds")
    parser.add_argument("--baseline-duration", type=float, default=15.0, help="GET /healthz")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured mixed load first")
    parser.add_argument(
        "--control-duration",
        type=float,
        default=20.0,
        help="mixed load without stalled connections first, seconds (GET /healthz half as "
        "long); 0 skips it",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--stalled", type=int, default=1000, help="stalled connections held")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=200, help="prepared jobs read and tagged")
    parser.add_argument("--dump-kb", type=float, default=10.0, help="size of each L&B dump")
    parser.add_argument("--templates", type=int, default=20, help="distinct generated dumps")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument(
        "--server-nofile",
        type=int,
        default=1024,
        help="the server's soft open-file limit at start (default 1024, the usual default of "
        "a login or a service manager; 0 = inherit this process's)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE, help="a PostgreSQL server")
    parser.add_argument("--server-log", type=Path, help="keep a copy of the server's log there")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    cleanup_on_sigterm()
    require_tool("wrk", "apt-get install -y wrk   (or: sh scripts/ensure-wrk.sh)")
    # wrk and the stall helper are children: they inherit the raised limit.
    own = raise_open_file_limit(args.stalled + args.connections + 1024)
    print(
        f"load benchmark, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"open-file limit here {own}, server {args.server_nofile or 'inherited'}"
    )
    templates = dump_templates(args.templates, int(args.dump_kb * 1000), args.seed)
    sizes = sorted(len(t) for t in templates)
    print(f"  {len(templates)} generated dumps, {sizes[0]}-{sizes[-1]} bytes")
    with (
        throwaway_postgres(args.database_url) as url,
        bench_home(url) as home,
        jp_serve(home, args.workers, args.server_nofile or None) as server,
        tempfile.TemporaryDirectory(prefix="jp-bench-load-") as work,
    ):
        print(f"  jp-primary serve on {server.url}, pid {server.pid}")
        started = time.perf_counter()
        keys = prepare_jobs(server, home, templates, args.jobs)
        print(f"  prepared {len(keys)} jobs with dumps in {time.perf_counter() - started:.1f} s")
        keys_file = Path(work) / "keys.txt"
        keys_file.write_text("\n".join(keys) + "\n")
        for index, template in enumerate(templates, 1):
            (Path(work) / f"dump-{index}.ulm").write_text(template)
        env = {
            **os.environ,
            "JP_BENCH_TOKEN": home.token,
            "JP_LOAD_KEYS": str(keys_file),
            "JP_LOAD_DUMPS": work,
            "JP_LOAD_PLACEHOLDER": PLACEHOLDER,
        }
        jobs_before, files_before = count_rows(url)
        if args.warmup > 0:
            run_wrk(server.url, "mixed", args.warmup, args, env)
        control: tuple[WrkRun, WrkRun] | None = None
        if args.control_duration > 0:  # the same load without stalled connections
            control = (
                run_wrk(server.url, "bare", args.control_duration / 2, args, env),
                run_wrk(server.url, "mixed", args.control_duration, args, env),
            )
        with stalled(int(server.url.rsplit(":", 1)[1]), args.stalled) as stall:
            print(f"  stalled connections: {stall['ready']}")
            print(f"  open files per server process: {open_files(server.pid)}")
            bare = run_wrk(server.url, "bare", args.baseline_duration, args, env)
            mixed = run_wrk(server.url, "mixed", args.duration, args, env)
            print(f"  open files per server process at the end: {open_files(server.pid)}")
        jobs_after, files_after = count_rows(url)
        alive = server.process.poll() is None
        problems = log_problems(home.path)
        if args.server_log:
            for log in home.path.glob("serve-*.log"):
                shutil.copyfile(log, args.server_log)
    print(
        f"  database: +{jobs_after - jobs_before} jobs, +{files_after - files_before} lb files "
        f"(warm-up and control included); server still running: {alive}"
    )
    print(f"  server log, tracebacks by exception: {problems or 'none'}")
    if set(problems) <= {"starlette.requests.ClientDisconnect"}:
        print("    (ClientDisconnect: uploads cut off when wrk stopped at the end of a run)")
    return 0 if report(bare, mixed, control, stall, args) and alive else 1


if __name__ == "__main__":
    sys.exit(main())
