"""Migration 0006 keys the attribute values stored before it (issue 9: typed storage)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from jp_primary.attributes.names import LB_ATTRIBUTES, LB_TAG, SYSTEM_REGTIME
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


OLD_VALUES = [
    (SYSTEM_REGTIME, "2026-11-29T11:00:00+01:00", "2026-11-29T10:00:00.000000Z"),
    (f"{LB_ATTRIBUTES}:status", "DONE", "06"),
    (f"{LB_ATTRIBUTES}:exitCode", "10", "P00210"),
    (f"{LB_ATTRIBUTES}:exitCode", "not a number", None),
    (f"{LB_ATTRIBUTES}:doneCode", "FAILED", "01"),
    (f"{LB_TAG}:campaign", "2026-11", "2026-11"),
    (f"{LB_TAG}:long", "x" * 300, "x" * 128),
]


def _old_rows(url: str) -> None:
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
        for seq, (name, value, _key) in enumerate(OLD_VALUES, start=1):
            conn.execute(
                text(
                    "INSERT INTO attribute_values (seq, job_id, name, value, origin, timestamp, "
                    "recorded_at) VALUES (:seq, 1, :name, :value, 'FILE', :t, :t)"
                ),
                {"seq": seq, "name": name, "value": value, "t": now},
            )
    engine.dispose()


def test_existing_values_get_their_typed_keys(empty_database: str) -> None:
    command.upgrade(migrate.alembic_config(empty_database), "0005")
    _old_rows(empty_database)
    migrate.upgrade(empty_database)
    engine = create_engine(empty_database)
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT index_key FROM attribute_values ORDER BY seq")).all()
    engine.dispose()
    assert [k for (k,) in keys] == [key for _name, _value, key in OLD_VALUES]


def test_downgrade_drops_the_keys(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    command.downgrade(migrate.alembic_config(empty_database), "0005")
    engine = create_engine(empty_database)
    with engine.connect() as conn:
        columns = conn.execute(text("SELECT * FROM attribute_values")).keys()
    engine.dispose()
    assert "index_key" not in columns
    migrate.upgrade(empty_database)
