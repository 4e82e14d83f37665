"""Where the FTP backend puts its files and how often it asks for directories, checked against
globus-gridftp-server, which (unlike pyftpdlib) does not confine an account to its home
(defect 17 of the hardening issue)."""

from __future__ import annotations

import ftplib
import secrets
import shutil
from collections.abc import AsyncIterator

import pytest

from jp_primary.backends.ftp import FTPBackend, ancestry
from jp_primary.backends.ftp_pool import FTPOptions

from .conftest import FTPSite
from .servers import GridFTP

pytestmark = pytest.mark.anyio


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.mark.parametrize(
    ("path", "base"),
    [
        ("", ""),
        ("/", ""),
        ("/jp/files/", "jp/files"),
        ("/%2Fsrv/jp", "/srv/jp"),
        ("/%2F", "/"),
        ("/%2Fsrv%2Fjp/files", "/srv/jp/files"),
        ("/j%20p//x", "j p/x"),
    ],
)
def test_defect_17_url_path_follows_rfc_1738(path: str, base: str) -> None:
    assert FTPOptions(url=f"ftp://u:p@h{path}").base == base


@pytest.mark.parametrize("path", ["/a/%2Fb", "/a/../b", "/./a"])
def test_defect_17_ambiguous_url_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="URL path"):
        FTPOptions(url=f"ftp://u:p@h{path}")


async def test_defect_17_url_path_is_relative_to_the_login_directory(gridftp: GridFTP) -> None:
    area = f"rel-{secrets.token_hex(4)}"
    backend = FTPBackend(FTPOptions(url=gridftp.url(f"{area}/jp"), timeout=10))
    try:
        await backend.put_stream("a/b", one(b"in the home"), max_size=100)
        assert [i.key async for i in backend.list("")] == ["a/b"]
    finally:
        await backend.close()
    assert (gridftp.home / area / "jp" / "a" / "b").read_bytes() == b"in the home"


async def test_defect_17_encoded_slash_makes_the_path_absolute(gridftp: GridFTP) -> None:
    absolute = gridftp.home / f"abs-{secrets.token_hex(4)}"
    url = gridftp.url("%2F" + absolute.as_posix().lstrip("/"))
    backend = FTPBackend(FTPOptions(url=url, timeout=10))
    try:
        await backend.check()
        await backend.put_stream("k/v", one(b"absolute"), max_size=100)
        assert [i.key async for i in backend.list("k")] == ["k/v"]
    finally:
        await backend.close()
    assert (absolute / "k" / "v").read_bytes() == b"absolute"


@pytest.fixture
def mkd_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = ftplib.FTP.mkd

    def counting(self: ftplib.FTP, dirname: str) -> str:
        calls.append(dirname)
        return real(self, dirname)

    monkeypatch.setattr(ftplib.FTP, "mkd", counting)
    return calls


@pytest.mark.parametrize("server", ["pyftpdlib", "gridftp"])
async def test_defect_17_one_mkd_per_new_directory(
    server: str, request: pytest.FixtureRequest, mkd_calls: list[str]
) -> None:
    area = f"mkd-{secrets.token_hex(4)}"
    if server == "gridftp":
        grid: GridFTP = request.getfixturevalue("gridftp")
        url, root = grid.url(area), grid.home / area
    else:
        site: FTPSite = request.getfixturevalue("ftp_site")
        url, root = site.url(area), site.root / area
    backend = FTPBackend(FTPOptions(url=url, timeout=10))
    try:
        for key in ["s/u1/data", "s/u1/more", "s/u2/data", "f/j/1", "f/j/2"]:
            await backend.put_stream(key, one(key.encode()), max_size=100)
        made = {area, f"{area}/s", f"{area}/s/u1", f"{area}/s/u2", f"{area}/f", f"{area}/f/j"}
        assert sorted(mkd_calls) == sorted(made)  # each directory asked for once
        # A directory removed behind the backend's back (gc, an operator) is made again.
        shutil.rmtree(root / "s" / "u1")
        mkd_calls.clear()
        await backend.put_stream("s/u1/again", one(b"again"), max_size=100)
        assert (root / "s" / "u1" / "again").read_bytes() == b"again"
        assert f"{area}/s/u1" in mkd_calls
        shutil.rmtree(root / "f")  # and a publish into a directory that went away
        await backend.publish("s/u1/again", "f/j/again")
        assert (root / "f" / "j" / "again").read_bytes() == b"again"
    finally:
        await backend.close()


def test_ancestry_of_relative_and_absolute_directories() -> None:
    assert ancestry("a/b/c") == ["a", "a/b", "a/b/c"]
    assert ancestry("/a/b") == ["/a", "/a/b"]
    assert ancestry("") == []
