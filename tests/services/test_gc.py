from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.helpers import ALICE, Api, register_job, start_upload


def _gc(api: Api, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {"JP_HOME": str(api.settings.home), "JP_DATABASE_URL": api.settings.database_url}
    return subprocess.run(
        [sys.executable, "-m", "jp_primary.cli", "gc", "--min-age", "0", *flags],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_gc_finds_and_removes_only_unreferenced_objects(api: Api) -> None:
    key = register_job(api)
    kept = api.client.put(f"/v1/jobs/{key}/files/osb", content=b"kept", headers=api.auth(ALICE))
    assert kept.status_code == 201
    active = start_upload(api, key, name="in-progress").json()
    api.client.put(
        f"/v1/uploads/{active['upload_id']}", content=b"pending", headers=api.auth(ALICE)
    )
    root = api.storage_root
    # What crashes leave behind: published bytes without a row, a staging object of an upload
    # that ended while the service was down, a temporary file of an interrupted write.
    crashed = root / "files" / key[:2] / key / "isb" / "default"
    crashed.parent.mkdir(parents=True)
    crashed.write_bytes(b"orphan")
    ended = root / "staging" / "ended-upload" / "attempt"
    ended.parent.mkdir(parents=True)
    ended.write_bytes(b"stale")
    temporary = root / "files" / key[:2] / key / "osb" / ".tmp-default.123"
    temporary.write_bytes(b"partial")

    dry = _gc(api)
    assert dry.returncode == 0, dry.stderr
    assert "3 orphan objects" in dry.stdout
    for path in (crashed, ended, temporary):
        assert path.relative_to(root).as_posix() in dry.stdout
        assert path.exists()

    deleted = _gc(api, "--delete")
    assert deleted.returncode == 0, deleted.stderr
    assert not any(p.exists() for p in (crashed, ended, temporary))
    commit = api.client.post(f"/v1/uploads/{active['upload_id']}/commit", headers=api.auth(ALICE))
    assert commit.status_code == 200
    got = api.client.get(f"/v1/jobs/{key}/files/osb", headers=api.auth(ALICE))
    assert got.content == b"kept"


def test_defect_14_empty_staging_directories_go_when_uploads_end_and_gc_sees_leftovers(
    api: Api,
) -> None:
    key = register_job(api)
    root = api.storage_root
    staging = root / "staging"
    # Commit, abort and a failed commit each leave no staging/<upload>/ behind.
    assert (
        api.client.put(
            f"/v1/jobs/{key}/files/osb", content=b"ok", headers=api.auth(ALICE)
        ).status_code
        == 201
    )
    aborted = start_upload(api, key, name="aborted").json()
    api.client.put(aborted["url"], content=b"x", headers=api.auth(ALICE))
    assert api.client.delete(aborted["url"], headers=api.auth(ALICE)).status_code == 204
    assert sorted(staging.iterdir()) == []

    # Leftovers of a process that died: an empty staging directory of an upload that is no
    # longer open, next to an in-progress upload whose directory is empty for the moment.
    old = time.time() - 7200
    ended = staging / "ended-upload"
    ended.mkdir()
    os.utime(ended, (old, old))
    active = start_upload(api, key, name="in-progress").json()
    waiting = staging / active["upload_id"]
    waiting.mkdir()
    os.utime(waiting, (old, old))

    dry = _gc(api)
    assert dry.returncode == 0, dry.stderr
    assert "staging/ended-upload/" in dry.stdout
    assert active["upload_id"] not in dry.stdout
    assert "1 empty staging directories" in dry.stdout
    assert ended.is_dir()
    deleted = _gc(api, "--delete")
    assert deleted.returncode == 0, deleted.stderr
    assert not ended.exists()
    assert waiting.is_dir()
