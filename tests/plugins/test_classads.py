from __future__ import annotations

import classad2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jp_primary.plugins.classads import classad_values

GLITE_JDL = """[
  Type = "Job";
  JobType = "Normal";
  Executable = "/bin/sh";
  Arguments = "-c 'echo \\"hi\\"'";
  InputSandbox = {"a.sh", "b.txt"};
  Requirements = other.GlueCEStateStatus == "Production";
  Rank = -other.GlueCEStateEstimatedResponseTime;
  RetryCount = 3;
  Ratio = 1.5;
  Flag = true;
  VirtualOrganisation = "voce";
  Nested = [ a = 1; b = "x" ];
]"""


def test_bracketed_glite_jdl_renders_each_attribute() -> None:
    values = dict(classad_values(GLITE_JDL))
    assert values == {
        "Type": "Job",
        "JobType": "Normal",
        "Executable": "/bin/sh",
        "Arguments": "-c 'echo \"hi\"'",
        "InputSandbox": '{ "a.sh","b.txt" }',
        "Requirements": 'other.GlueCEStateStatus == "Production"',
        "Rank": "-other.GlueCEStateEstimatedResponseTime",
        "RetryCount": "3",
        "Ratio": "1.5",
        "Flag": "true",
        "VirtualOrganisation": "voce",
        "Nested": '[ a = 1; b = "x" ]',
    }


def test_result_is_sorted_by_name_case_insensitively() -> None:
    names = [name for name, _ in classad_values("[ b = 1; A = 2; c = 3 ]")]
    assert names == ["A", "b", "c"]


def test_bracketless_jdl_file_with_comments() -> None:
    text = (
        "# a gLite JDL as written on disk\n"
        'Executable = "/bin/hostname"; # trailing hash comment\n'
        'StdOutput = "std#out"; // C++ comment\n'
        "/* block\n comment */\n"
        "NodeNumber = 4;\n"
    )
    assert classad_values(text) == [
        ("Executable", "/bin/hostname"),
        ("NodeNumber", "4"),
        ("StdOutput", "std#out"),
    ]


def test_old_line_format() -> None:
    assert classad_values('ClusterId = 12\nOwner = "alice"\n\nCmd = "/bin/true"\n') == [
        ("ClusterId", "12"),
        ("Cmd", "/bin/true"),
        ("Owner", "alice"),
    ]


def test_special_values_keep_their_keywords() -> None:
    values = dict(classad_values('[ U = undefined; E = error; S = ""; X = N + 1; L = {} ]'))
    assert values["U"] == "undefined"
    assert values["E"] == "error"
    assert values["S"] == ""
    assert values["X"] == "N + 1"
    assert values["L"].replace(" ", "") == "{}"


def test_duplicate_names_keep_the_last_value() -> None:
    assert classad_values('[ a = "x"; A = "y" ]') == [("a", "y")]


def test_empty_ad_has_no_attributes() -> None:
    assert classad_values("[ ]") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("  // just a comment\n", "empty"),
        ("[ a = 1; ] junk", "after the closing"),
        ("[ a = ; ]", "not a valid ClassAd"),
        ("[ a = 1;", "never closed"),
        ('[ a = "x ]', "unterminated string"),
        ("[ a = 1; /* open", "unterminated /*"),
        ("hello world", "line 1 is not an attribute assignment"),
        ("a = 1\nfoo bar\n", "line 2 is not an attribute assignment"),
        ("a = 1; b = ;", "not a valid ClassAd"),
    ],
)
def test_unparsable_text_raises_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classad_values(text)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40))
def test_string_literals_round_trip(value: str) -> None:
    text = f"[ Value = {classad2.quote(value)}; ]"
    assert classad_values(text) == [("Value", value)]
