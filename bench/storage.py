"""Benchmark: the service on S3 (SeaweedFS) and FTP (pyftpdlib) against clients writing the same
file straight into the same store.

One file (default 1 GiB of pseudo-random bytes, page cache warm) is stored several ways, each next
to its baseline, in interleaved rounds (``--repeat``, default 3; the median of each side counts):

* ``s3``: one-shot ``PUT /v1/jobs/{key}/files/osb?name=...`` (``curl -T``) into a service on
  SeaweedFS, against ``boto3 upload_file`` to the same bucket (8 MiB parts, checksums
  ``when_required``): ratio target >= 0.7;
* ``ftp``: the same PUT into a service on pyftpdlib, against the same PUT into a service on the
  filesystem backend: ratio target >= 0.7 (``ftplib.storbinary`` to the same server is shown too);
* ``post``: a direct upload, ``POST /v1/jobs/{key}/uploads`` (``direct: true``), the presigned
  POST to SeaweedFS (``curl -F``, streamed) and ``POST /v1/uploads/{id}/commit``, against the
  same presigned POST (same policy: exact length, pinned sha256) made with boto3 and sent by
  curl: ratio target >= 0.9, and the commit <= 5 % of the total;
* ``tar``: a plain tar of the same size with ``--tar-members`` members (default 10,000) uploaded
  directly and committed on S3: the bytes the sandbox plugin had the store serve
  (``jp_plugin_fetched_bytes_total``), target <= 5 % of the archive.

Every server (weed, pyftpdlib, one ``jp-primary serve`` per backend with its own temporary
JP_HOME and SQLite) runs in its own process on free loopback ports and is killed on the way out,
also on errors, Ctrl-C and ``--time-limit``. Every stored size and sha256 is checked.

    .venv/bin/python bench/storage.py                   # 1 GiB, all of them
    .venv/bin/python bench/storage.py --size-mib 64 --only s3,post
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ftplib
import hashlib
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from results import Figure, record
from serverctl import bench_home, require_tool
from storeanatomy import ftp_commit_anatomy, s3_commit_anatomy, timed
from storeclients import Api, curl_post_form, find_py_spy, profiled, summarize_profile
from storeservers import (
    BUCKET,
    FTP_PASSWORD,
    FTP_USER,
    S3_KEY,
    S3_SECRET,
    Proc,
    cpu_seconds,
    ftp_server,
    s3_client,
    seaweed,
    service,
)
from storetar import make_tar, tar_commit
from upload import make_file, warm_cache

MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # boto3's default part size, and the service's (JP_S3_PART_SIZE)
FTP_BLOCK = MIB  # ftplib's default is 8 KiB; 1 MiB makes the baseline faster, so stricter
TARGETS = {"s3": 0.7, "ftp": 0.7, "post": 0.9}
COMMIT_SHARE = 0.05  # the direct upload's commit, of its total
TAR_FETCHED = 0.05  # bytes a tar listing has the store serve, of the archive


@dataclass
class Sample:
    seconds: float
    cpu: dict[str, float]  # CPU seconds per process during the run
    parts: dict[str, float] = field(default_factory=dict)  # e.g. the commit's share


@dataclass
class Comparison:
    name: str
    baseline_label: str
    measured_label: str
    baseline: list[Sample] = field(default_factory=list)
    measured: list[Sample] = field(default_factory=list)

    def best(self, side: str) -> Sample:
        """The median round of one side (the lower middle one for an even count)."""
        samples = sorted(getattr(self, side), key=lambda s: s.seconds)
        return samples[(len(samples) - 1) // 2]

    @property
    def ratio(self) -> float:
        return self.best("baseline").seconds / self.best("measured").seconds


def own_cpu() -> float:
    """CPU of this process (all its threads) plus of its finished children (curl)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(action: Callable[[], dict[str, float]], source: Path, procs: dict[str, int]) -> Sample:
    """Time ``action`` with the file in the page cache; CPU of the client and of each server."""
    warm_cache(source)
    before = {name: cpu_seconds(pid) for name, pid in procs.items()} | {"client": own_cpu()}
    started = time.perf_counter()
    parts = action()
    seconds = time.perf_counter() - started
    after = {name: cpu_seconds(pid) for name, pid in procs.items()} | {"client": own_cpu()}
    return Sample(seconds, {name: after[name] - before[name] for name in after}, parts)


def run_rounds(
    comparison: Comparison,
    baseline: Callable[[], dict[str, float]],
    measured: Callable[[], dict[str, float]],
    source: Path,
    procs: dict[str, int],
    repeat: int,
) -> None:
    """Rounds alternate which side goes first, so a slow phase of the machine hits both."""
    for round_number in range(repeat):
        sides = [("baseline", baseline), ("measured", measured)]
        for side, action in sides if round_number % 2 == 0 else sides[::-1]:
            sample = measure(action, source, procs)
            getattr(comparison, side).append(sample)
            print(f"  {comparison.name} {side:8s} round {round_number + 1}: {sample.seconds:.2f} s")


@dataclass(frozen=True)
class Payload:
    path: Path
    size: int
    sha256: str


def make_payload_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def make_payload(directory: Path, size: int) -> Payload:
    path = directory / "payload.bin"
    make_file(path, size)
    return Payload(path, size, make_payload_digest(path))


def check_stored(answer: dict[str, Any], payload: Payload, what: str) -> None:
    if answer.get("sha256") != payload.sha256 or answer.get("size") != payload.size:
        raise RuntimeError(f"{what}: the service stored something else: {answer}")


def s3_settings(endpoint: str) -> dict[str, str]:
    return {
        "JP_STORAGE_BACKEND": "s3",
        "JP_S3_ENDPOINT_URL": endpoint,
        "JP_S3_BUCKET": BUCKET,
        "JP_S3_REGION": "us-east-1",
        "JP_S3_ACCESS_KEY_ID": S3_KEY,
        "JP_S3_SECRET_ACCESS_KEY": S3_SECRET,
        "JP_S3_ADDRESSING_STYLE": "path",
        "JP_S3_CHECKSUM": "when_required",
        "JP_S3_PREFIX": "service",
    }


def bench_s3(args: argparse.Namespace, payload: Payload, work: Path) -> list[Comparison]:
    directory = work / "seaweed"
    directory.mkdir()
    settings = s3_settings("") | args.service_env
    with seaweed(directory) as store:
        settings["JP_S3_ENDPOINT_URL"] = store.url
        client = s3_client(store.url)
        transfer = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE)
        counter = iter(range(1_000_000))

        def boto3_upload() -> dict[str, float]:
            key = f"direct/boto3-{next(counter)}"
            client.upload_file(str(payload.path), BUCKET, key, Config=transfer)
            head = client.head_object(Bucket=BUCKET, Key=key)
            if head["ContentLength"] != payload.size:
                raise RuntimeError(f"boto3 stored {head['ContentLength']} bytes")
            client.delete_object(Bucket=BUCKET, Key=key)
            return {}

        def boto3_post() -> dict[str, float]:
            """The presigned POST the service hands out (exact length, pinned sha256), made by
            boto3 itself and sent by curl, as the service's client sends it."""
            key = f"direct/post-{next(counter)}"
            checksum = {
                "x-amz-checksum-algorithm": "SHA256",
                "x-amz-checksum-sha256": b64_digest(payload.sha256),
            }
            conditions: list[Any] = [["content-length-range", payload.size, payload.size]]
            post = client.generate_presigned_post(
                Bucket=BUCKET,
                Key=key,
                Fields=checksum,
                Conditions=conditions + [{k: v} for k, v in checksum.items()],
                ExpiresIn=3600,
            )
            curl_post_form(post["url"], post["fields"], payload.path, 60 + payload.size / 2e6)
            head = client.head_object(Bucket=BUCKET, Key=key)
            if head["ContentLength"] != payload.size:
                raise RuntimeError(f"the POST stored {head['ContentLength']} bytes")
            client.delete_object(Bucket=BUCKET, Key=key)
            return {}

        limit = f"{2 * args.size_mib + 16}MiB"
        with bench_home(JP_MAX_FILE_SIZE=limit) as home, service(home, settings) as svc:
            api = Api(svc.url, home.token, payload.size)
            procs = {"service": svc.pid, "weed": store.pid}
            results = []
            if "s3" in args.only:
                results.append(compare_put(args, "s3", api, boto3_upload, payload, procs, svc))
            if "post" in args.only:
                results.append(compare_post(args, api, boto3_post, payload, procs, svc))
            if "tar" in args.only:
                tar_result(args, svc.url, home.token, work)
            api.close()
        if args.profile:
            print("  a commit's store operations, by boto3 with the service's transfer settings: ")
            print(f"    {seconds_text(s3_commit_anatomy(client, payload.path, work))}")
        client.close()
    return results


EXTRA: list[tuple[str, Figure]] = []  # figures beyond the ratios: (text, figure)


def b64_digest(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")


def tar_result(args: argparse.Namespace, url: str, token: str, work: Path) -> None:
    path = work / "sandbox.tar"
    size, sha256 = make_tar(path, args.size_mib * MIB, args.tar_members)
    run = tar_commit(url, token, path, size, sha256, args.tar_members)
    path.unlink()
    share = run.fetched / run.size
    ok = share <= TAR_FETCHED
    expected = 2 * run.members  # a filename and a size value per member
    text = (
        f"tar of {run.size / MIB:.0f} MiB, {run.members} members, direct upload on S3: "
        f"POST {run.post_seconds:.2f} s, commit {run.commit_seconds:.2f} s; the plugin had "
        f"the store serve {run.fetched / MIB:.1f} MiB = {share:.2%} of the archive "
        f"[target <= {TAR_FETCHED:.0%}] {'meets' if ok else 'ABOVE'}; "
        f"{run.values} values derived (expected {expected})"
    )
    print(f"  {text}")
    figure = Figure(
        "storage", f"tar: bytes a {run.members}-member tar listing fetched on S3, "
        f"{run.size / MIB:.0f} MiB", round(run.fetched / MIB, 1), "MiB",
        round(run.size / MIB, 1), round(share, 4), f"<= {TAR_FETCHED}", ok,
    )  # fmt: skip
    EXTRA.append((text, figure))


def hash_seconds(payload: Payload) -> float:
    """sha256 of the file in this process (hashlib, like the service), page cache warm."""
    warm_cache(payload.path)
    return timed(lambda: make_payload_digest(payload.path))


def seconds_text(parts: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f} s" for name, value in parts.items())


def show_profile(svc: Proc, output: Path, action: Callable[[], dict[str, float]]) -> None:
    """One more, unmeasured run under py-spy; where the service's threads spent it."""
    started = time.perf_counter()
    with profiled(svc.pid, output):
        parts = action()
    seconds = time.perf_counter() - started
    print(f"  profiled run {output.name}: {seconds:.2f} s {seconds_text(parts)} -> {output}.txt")
    for line in summarize_profile(output.with_suffix(".txt")):
        print(f"    {line}")


def compare_put(
    args: argparse.Namespace,
    name: str,
    api: Api,
    baseline: Callable[[], dict[str, float]],
    payload: Payload,
    procs: dict[str, int],
    svc: Proc,
) -> Comparison:
    def one_shot() -> dict[str, float]:
        check_stored(api.put_curl(payload.path), payload, "one-shot PUT")
        return {}

    base_label = {"s3": "boto3 upload_file, 8 MiB parts", "ftp": "the same PUT, filesystem backend"}
    comparison = Comparison(name, base_label[name], "service one-shot PUT (curl -T)")
    run_rounds(comparison, baseline, one_shot, payload.path, procs, args.repeat)
    if args.profile:
        show_profile(svc, args.profile / f"{name}-put", one_shot)
        warm_cache(payload.path)
        split = api.two_phase(payload.path, payload.sha256)
        print("  the same as two-phase upload: " + seconds_text(split))
    return comparison


def compare_post(
    args: argparse.Namespace,
    api: Api,
    baseline: Callable[[], dict[str, float]],
    payload: Payload,
    procs: dict[str, int],
    svc: Proc,
) -> Comparison:
    def direct() -> dict[str, float]:
        started = time.perf_counter()
        ticket = api.start_direct(payload.sha256)
        posted = time.perf_counter()
        curl_post_form(ticket["url"], ticket["fields"], payload.path, api.max_seconds)
        committing = time.perf_counter()
        check_stored(api.commit(ticket["upload_id"]), payload, "direct upload")
        done = time.perf_counter()
        return {"start": posted - started, "post": committing - posted, "commit": done - committing}

    comparison = Comparison("post", "boto3's presigned POST (curl -F)", "start + POST + commit")
    run_rounds(comparison, baseline, direct, payload.path, procs, args.repeat)
    if args.profile:
        show_profile(svc, args.profile / "post", direct)
    return comparison


def bench_ftp(args: argparse.Namespace, payload: Payload, work: Path) -> list[Comparison]:
    root = work / "ftp-root"
    root.mkdir()
    with ftp_server(root, work / "ftp.log") as store:
        settings = {"JP_STORAGE_BACKEND": "ftp", "JP_FTP_URL": f"{store.url}/service"}
        port = int(store.url.rpartition(":")[2])
        counter = iter(range(1_000_000))

        def ftplib_upload() -> None:
            name = f"direct-{next(counter)}.bin"
            with ftplib.FTP() as ftp, payload.path.open("rb") as f:  # noqa: S321  (plain FTP)
                ftp.connect("127.0.0.1", port, timeout=60)
                ftp.login(FTP_USER, FTP_PASSWORD)
                ftp.storbinary(f"STOR {name}", f, blocksize=FTP_BLOCK)
                if ftp.size(name) != payload.size:
                    raise RuntimeError("ftplib stored a different size")
                ftp.delete(name)

        limit = f"{2 * args.size_mib + 16}MiB"
        filesystem = {"JP_STORAGE_BACKEND": "filesystem"}
        with (
            bench_home(JP_MAX_FILE_SIZE=limit) as home,
            service(home, settings | args.service_env) as svc,
            bench_home(JP_MAX_FILE_SIZE=limit) as local_home,
            service(local_home, filesystem | args.service_env) as local_svc,
        ):
            api = Api(svc.url, home.token, payload.size)
            local_api = Api(local_svc.url, local_home.token, payload.size)

            def local_put() -> dict[str, float]:
                check_stored(local_api.put_curl(payload.path), payload, "PUT to the filesystem")
                return {}

            procs = {"service": svc.pid, "pyftpdlib": store.pid, "fs service": local_svc.pid}
            result = compare_put(args, "ftp", api, local_put, payload, procs, svc)
            warm_cache(payload.path)
            print(f"  for orientation, ftplib storbinary (1 MiB blocks) to the same server: "
                  f"{timed(ftplib_upload):.2f} s")  # fmt: skip
            api.close()
            local_api.close()
        if args.profile:
            print("  a commit's FTP operations, by ftplib as the service does them: ")
            print(f"    {seconds_text(ftp_commit_anatomy(port, payload.path, work))}")
    return [result]


def mbps(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:6.0f} MB/s"


def cpu_text(sample: Sample) -> str:
    return ", ".join(f"{name} {value:.1f}" for name, value in sample.cpu.items())


def report(results: list[Comparison], size: int) -> bool:
    met = True
    print(f"\nfile: {size / MIB:.0f} MiB, page cache warm; CPU seconds per process in brackets")
    for c in results:
        base, best = c.best("baseline"), c.best("measured")
        print(f"\n[{c.name}]")
        print(f"  {c.baseline_label:34s} {base.seconds:6.2f} s {mbps(size, base.seconds)}")
        print(f"    (cpu: {cpu_text(base)})")
        print(f"  {c.measured_label:34s} {best.seconds:6.2f} s {mbps(size, best.seconds)}")
        print(f"    (cpu: {cpu_text(best)})")
        if best.parts:
            print(f"    {seconds_text(best.parts)}")
        ok = c.ratio >= TARGETS[c.name]
        met &= ok
        verdict = "meets" if ok else "BELOW"
        print(f"  ratio {c.ratio:.2f} [target >= {TARGETS[c.name]}] {verdict}")
        record(
            Figure("storage", f"{c.name}: {c.measured_label}, {size / MIB:.0f} MiB",
                   round(size / best.seconds / 1e6, 1), "MB/s",
                   round(size / base.seconds / 1e6, 1), round(c.ratio, 3),
                   f">= {TARGETS[c.name]}", ok)
        )  # fmt: skip
        if c.name == "post":
            shares = sorted(s.parts["commit"] / s.seconds for s in c.measured)
            share = shares[(len(shares) - 1) // 2]
            ok = share <= COMMIT_SHARE
            met &= ok
            print(
                f"  commit share of the total (median): {share:.1%} "
                f"[target <= {COMMIT_SHARE:.0%}] {'meets' if ok else 'ABOVE'}"
            )
            record(
                Figure("storage", f"post: commit share of the total, {size / MIB:.0f} MiB",
                       round(best.parts["commit"], 3), "s", round(best.seconds, 3),
                       round(share, 4), f"<= {COMMIT_SHARE}", ok)
            )  # fmt: skip
    for text, figure in EXTRA:
        print(f"\n[tar]\n  {text}")
        met &= bool(figure.met)
        record(figure)
    return met


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, median of (default 3)")
    parser.add_argument(
        "--only", default="s3,ftp,post,tar", help="comma-separated subset of s3,ftp,post,tar"
    )
    parser.add_argument(
        "--tar-members", type=int, default=10_000, help="members of the tar (default 10000)"
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="JP_NAME=VALUE",
        help="extra setting for the services, e.g. JP_S3_PART_SIZE=67108864 (repeatable)",
    )
    parser.add_argument(
        "--profile", type=Path, help="after the rounds, one more upload each under py-spy, here"
    )
    parser.add_argument(
        "--time-limit", type=int, default=1800, help="stop (and clean up) after this many seconds"
    )
    args = parser.parse_args()
    args.only = {part.strip() for part in args.only.split(",") if part.strip()}
    if not args.only <= {*TARGETS, "tar"}:
        parser.error(f"--only takes a subset of {','.join(TARGETS)},tar")
    pairs = [item.partition("=") for item in args.service_env]
    if any(not name.startswith("JP_") or not sep for name, sep, _ in pairs):
        parser.error("--service-env wants JP_NAME=VALUE")
    args.service_env = {name: value for name, _, value in pairs}
    return args


def _give_up(signum: int, frame: object) -> None:
    raise TimeoutError(f"stopped by signal {signum} (time limit or interrupt)")


@contextlib.contextmanager
def bounded(seconds: int) -> Iterator[None]:
    """SIGALRM after ``seconds`` and SIGTERM both unwind through every ``finally``."""
    signal.signal(signal.SIGALRM, _give_up)
    signal.signal(signal.SIGTERM, _give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)


def main() -> int:
    args = parse_args()
    require_tool("curl", "apt-get install -y curl")
    if args.profile:
        if find_py_spy() is None:
            sys.exit(
                "error: `py-spy` is not installed; install it with: .venv/bin/pip install py-spy"
            )
        args.profile.mkdir(parents=True, exist_ok=True)
    print(
        f"storage benchmark, {os.cpu_count()} CPUs, {args.size_mib} MiB, median of {args.repeat}, "
        f"{','.join(sorted(args.only))}"
    )
    work = Path(tempfile.mkdtemp(prefix="jp-bench-storage-"))
    results: list[Comparison] = []
    try:
        with bounded(args.time_limit):
            payload = make_payload(work, args.size_mib * MIB)
            print(f"  sha256 of the file with hashlib: {hash_seconds(payload):.2f} s")
            if args.only & {"s3", "post", "tar"}:
                results += bench_s3(args, payload, work)
            if "ftp" in args.only:
                results += bench_ftp(args, payload, work)
    except TimeoutError as stopped:
        print(f"error: {stopped}; every server was stopped", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if report(results, args.size_mib * MIB) else 1


if __name__ == "__main__":
    sys.exit(main())
