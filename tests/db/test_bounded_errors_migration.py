"""Migration 0004 bounds the extraction problems that files stored before it (issue 14,
defect 3: one file's 492 MB of problems made every job read return them all)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from jp_primary.db import migrate
from tests.conftest import create_pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite'}"
        return
    url, drop = create_pg_database()
    try:
        yield url
    finally:
        drop()


def _old_file_row(url: str, problems: list[dict[str, object]]) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO identities (id, subject, created_at) VALUES (1, 'a', :t)"), {"t": now}
        )
        conn.execute(
            text(
                "INSERT INTO jobs (id, key, jobid, owner_id, registered_by_id, registered_at) "
                "VALUES (1, 'k', 'https://lb.example.org/k', 1, 1, :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO files (id, job_id, file_class, name, size, sha256, uploader_id, "
                "committed_at, location, extraction_errors) "
                "VALUES (1, 1, 'lb', '', 1, 'x', 1, :t, 'loc', :errors)"
            ),
            {"t": now, "errors": json.dumps(problems)},
        )
    engine.dispose()


def test_defect_3_old_unbounded_problems_are_cut_and_counted(empty_database: str) -> None:
    command.upgrade(migrate.alembic_config(empty_database), "0002")
    _old_file_row(empty_database, [{"message": "m" * 5000, "line": n} for n in range(3000)])
    migrate.upgrade(empty_database)
    engine = create_engine(empty_database)
    with engine.connect() as conn:
        errors, count = conn.execute(
            text("SELECT extraction_errors, extraction_error_count FROM files WHERE id = 1")
        ).one()
    engine.dispose()
    kept = json.loads(errors)
    assert count == 3000
    assert [p["line"] for p in kept] == list(range(100))
    assert all(len(p["message"]) == 1000 for p in kept)
