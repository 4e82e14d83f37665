"""The wheel carries the migrations (issue 15 item 7): build it from the files a release ships,
install it into a fresh virtual environment that has nothing of this checkout, and run
``jp-primary migrate`` there against an empty database.

The fresh environment gets its dependencies without a download: a ``.pth`` line appends this
environment's site-packages after its own. Python runs the ``.pth`` files of a site-packages folder
only, not of a folder such a line adds, so the checkout's editable install stays out; the test
checks that the code that ran came from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

import jp_primary.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from jp_primary.db import migrate
from tests.conftest import create_pg_database
from tests.helpers import REPO

pytestmark = pytest.mark.slow

# The wheel is built from a copy of these, so stale build/ output in the checkout can't leak in.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "jp_primary", "migrations")


@dataclass(frozen=True)
class WheelEnv:
    root: Path
    wheel: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(  # noqa: S603
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _clean_env(**values: str) -> dict[str, str]:
    """This process's environment without PYTHONPATH or any JP_ setting, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JP_") and k != "PYTHONPATH"}
    env.update(values)
    return env


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> WheelEnv:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        path = REPO / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    wheelhouse = tmp / "wheelhouse"
    # No build isolation: the test extra installs a recent enough setuptools, so no download.
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--wheel-dir", wheelhouse, src],
        cwd=tmp,
    )
    (wheel,) = wheelhouse.glob("jp_primary-*.whl")

    root = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps"]
        + ["--no-index", wheel],
        cwd=tmp,
    )
    # Only after installing (pip would otherwise see the checkout's editable jp_primary there).
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp)
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(site.strip()) / "_dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    return WheelEnv(root=root, wheel=wheel)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    url, drop = create_pg_database()
    try:
        yield url
    finally:
        drop()


def test_wheel_ships_every_module_and_migration(wheel_env: WheelEnv) -> None:
    names = set(zipfile.ZipFile(wheel_env.wheel).namelist())
    shipped = "jp_primary/_migrations/"
    assert {shipped + "env.py", shipped + "script.py.mako"} <= names
    revisions = sorted(p.name for p in (REPO / "migrations" / "versions").glob("*.py"))
    assert revisions, "no revisions found under migrations/versions/"
    missing = [f"{shipped}versions/{r}" for r in revisions]
    # setup.py finds packages by their __init__.py: a folder without one would be left out.
    # The web view's templates and stylesheet are package data (pyproject.toml).
    missing += [
        p.relative_to(REPO).as_posix()
        for pattern in ("*.py", "*.html", "*.css")
        for p in (REPO / "jp_primary").rglob(pattern)
        if "__pycache__" not in p.parts
    ]
    missing = [name for name in missing if name not in names]
    assert not missing, f"missing from the wheel (a package without __init__.py?): {missing}"


def test_migrate_from_an_installed_wheel(
    wheel_env: WheelEnv, empty_database: str, tmp_path: Path
) -> None:
    workdir = tmp_path / "cwd"  # an empty working directory: nothing importable from here
    workdir.mkdir()
    env = _clean_env(JP_HOME=str(tmp_path / "home"), JP_DATABASE_URL=empty_database)

    where = _run(
        [
            wheel_env.bin / "python",
            "-c",
            "import jp_primary.db.migrate as m; print(m.__file__); print(m.MIGRATIONS)",
        ],
        cwd=workdir,
        env=env,
    ).split()
    assert all(Path(p).is_relative_to(wheel_env.root) for p in where), where

    out = _run([wheel_env.bin / "jp-primary", "migrate"], cwd=workdir, env=env)
    assert "database is at the newest schema" in out

    head = ScriptDirectory.from_config(migrate.alembic_config(empty_database)).get_current_head()
    engine = create_engine(empty_database)
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
    assert set(SQLModel.metadata.tables) <= tables
    assert version == head
