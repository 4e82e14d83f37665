"""The index server's configuration file: validated, every problem named by its key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jp_primary.errors import ConfigurationError
from jp_primary.index.config import default_config_text, parse_config

GOOD = """
[server]
public_url = "http://index.example.org:8902"

[[attributes]]
name = "lb:status"
indexed = true

[[feeds]]
name = "main"
url = "https://jp.example.org:8901"
token = "t"
conditions = [{attr = "lb:status", op = "eq", value = "Done"}]
"""


def problem(text: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        parse_config(text, "index.toml")
    return str(caught.value)


def test_the_default_configuration_is_valid_and_indexes_what_the_issue_names() -> None:
    config = parse_config(default_config_text())
    names = {a.name.rpartition(":")[2]: a for a in config.attributes}
    assert {"status", "owner", "regtime", "ceNode", "doneCode", "*"} <= set(names)
    assert names["status"].indexed
    assert names["*"].name == "http://egee.cesnet.cz/en/WSDL/jp-lbtag:*"  # every user tag
    feed = config.feeds[0]
    assert (feed.history, feed.continuous, feed.conditions) == (True, True, [])


def test_a_good_file_expands_aliases() -> None:
    config = parse_config(GOOD)
    assert config.attributes[0].name == "http://egee.cesnet.cz/en/Schema/LB/Attributes:status"
    assert config.feed_attributes(config.feeds[0]) == [config.attributes[0].name]
    assert config.database_url.endswith("var/index/index.sqlite")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (('url = "https://jp.example.org:8901"', 'url = "jp.example.org"'), "feeds[0].url"),
        (('op = "eq"', 'op = "like"'), "unknown operator 'like'"),
        (('name = "main"', 'name = "a b"'), "feeds[0].name"),
        (("indexed = true", "indexed = 1"), "attributes[0].indexed"),
        (("indexed = true", "indexed = true\nqueryable = false"), "must be queryable"),
        (('token = "t"', 'token = "t"\ntoken_file = "f"'), "token or token_file"),
        (('token = "t"', 'token = "t"\nhistroy = true'), "feeds[0].histroy: Extra inputs"),
        (('token = "t"', "history = false\ncontinuous = false"), "history and continuous"),
        (('public_url = "http://index.example.org:8902"', ""), "server.public_url"),
        (('name = "lb:status"', 'name = "status"'), "attributes[0].name"),
        (
            ('public_url = "http://index.example.org:8902"', "sqlite_cache_mb = -1"),
            "server.sqlite_cache_mb",
        ),
    ],
)
def test_a_bad_file_names_the_key(change: tuple[str, str], words: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    message = problem(text)
    assert message.startswith("index.toml: ")
    assert words in message


def test_not_toml_and_missing_sections() -> None:
    assert "not valid TOML" in problem("[server\n")
    assert "attributes: Field required" in problem("")


def test_the_command_refuses_a_bad_file_with_exit_2_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "index.toml"
    bad.write_text(GOOD.replace('url = "https://jp.example.org:8901"', "url = 8901"))
    result = subprocess.run(
        [sys.executable, "-m", "jp_primary.cli", "index-server", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert f"{bad}: feeds[0].url: Input should be a valid string" in result.stderr
    printed = subprocess.run(
        [sys.executable, "-m", "jp_primary.cli", "index-server", "--print-default-config"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert printed.stdout == default_config_text()
