"""The shared-data decision: skip when the data is missing, fail under JP_REQUIRE_SHARED_DATA=1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import helpers


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(helpers, "SHARED", tmp_path)
    monkeypatch.delenv(helpers.REQUIRE_SHARED_DATA, raising=False)
    return tmp_path


def test_missing_shared_data_skips_by_default(shared: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match="no \\*.lb in"):
        helpers.shared_data_or_skip("data", "lb", pattern="*.lb")


def test_missing_shared_data_fails_when_required(
    shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(helpers.REQUIRE_SHARED_DATA, "1")
    with pytest.raises(pytest.fail.Exception, match="JP_REQUIRE_SHARED_DATA=1"):
        helpers.shared_data_or_skip("data", "lb", pattern="*.lb")
    (shared / "data" / "lb").mkdir(parents=True)  # present but empty is missing too
    with pytest.raises(pytest.fail.Exception):
        helpers.shared_data_or_skip("data", "lb", pattern="*.lb")


def test_present_shared_data_is_returned(shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(helpers.REQUIRE_SHARED_DATA, "1")
    folder = shared / "data" / "lb"
    folder.mkdir(parents=True)
    (folder / "one.lb").write_text("DG.EVNT=x\n")
    assert helpers.shared_data_or_skip("data", "lb", pattern="*.lb") == folder


def test_the_real_dumps_are_found_where_ci_expects_them() -> None:
    # Next to the repository, as ../shared/data/lb (REPO is the worktree's root).
    assert helpers.REPO.parent / "shared" == helpers.SHARED
    assert (helpers.REPO / "pyproject.toml").is_file()
