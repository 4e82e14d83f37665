from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from jp_primary.plugins.base import ExtractContext
from jp_primary.plugins.jdl.plugin import MAX_JDL_BYTES, JDLPlugin

COMMITTED = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)
CONTEXT = ExtractContext(
    jobid="https://lb.example.org:9000/abc",
    key="abc",
    file_class="jdl",
    file_name="",
    committed_at=COMMITTED,
)

JDL = """[
  Executable = "/bin/hostname";
  StdOutput = "std.out";
  InputSandbox = {"run.sh"};
  VirtualOrganisation = "voce";
  NodeNumber = 2;
]
"""


@pytest.fixture
def jdl_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.jdl"
    path.write_text(JDL)
    return path


def test_each_attribute_becomes_a_jdl_value(jdl_file: Path) -> None:
    extraction = JDLPlugin().extract(jdl_file, CONTEXT)
    assert extraction.errors == []
    assert {v.name: v.value for v in extraction.values} == {
        "http://jdl:Executable": "/bin/hostname",
        "http://jdl:InputSandbox": '{ "run.sh" }',
        "http://jdl:NodeNumber": "2",
        "http://jdl:StdOutput": "std.out",
        "http://jdl:VirtualOrganisation": "voce",
    }
    assert {v.timestamp for v in extraction.values} == {COMMITTED}
    assert {v.origin_detail for v in extraction.values} == {None}


def test_bracketless_file_as_users_wrote_it(tmp_path: Path) -> None:
    path = tmp_path / "job.jdl"
    path.write_text('# comment\nExecutable = "/bin/date";\nArguments = "-u";\n')
    extraction = JDLPlugin().extract(path, CONTEXT)
    assert [(v.name, v.value) for v in extraction.values] == [
        ("http://jdl:Arguments", "-u"),
        ("http://jdl:Executable", "/bin/date"),
    ]


@pytest.mark.parametrize(
    "content",
    [b"this is not a classad", b"[ a = ; ]", b"\x00\x01\x02binary", b""],
)
def test_unparsable_file_is_a_problem_not_a_crash(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.jdl"
    path.write_bytes(content)
    extraction = JDLPlugin().extract(path, CONTEXT)
    assert extraction.values == []
    [problem] = extraction.errors
    assert problem.message.startswith("unparsable ClassAd: ")


def test_non_utf8_text_is_reported_and_still_parsed(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jdl"
    path.write_bytes(b'[ Owner = "Ji\xf8\xed"; Count = 1 ]')
    extraction = JDLPlugin().extract(path, CONTEXT)
    values = {v.name: v.value for v in extraction.values}
    assert values["http://jdl:Count"] == "1"
    assert values["http://jdl:Owner"] == "Ji\ufffd\ufffd"
    [problem] = extraction.errors
    assert "not valid UTF-8 at byte 13" in problem.message


def test_oversized_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.jdl"
    with path.open("wb") as stream:
        stream.truncate(MAX_JDL_BYTES + 1)  # sparse: no real disk use
    extraction = JDLPlugin().extract(path, CONTEXT)
    assert extraction.values == []
    [problem] = extraction.errors
    assert "larger than a ClassAd can be" in problem.message


def test_declarations() -> None:
    assert JDLPlugin.classes == ("jdl",)
    assert JDLPlugin.aliases["urn:org.glite.jp.primary:classad"] == "jdl"
    assert JDLPlugin.namespaces == ("http://jdl",)
