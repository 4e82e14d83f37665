"""The spool's message formats: what L&B, its dump exporter and upload_files write."""

from __future__ import annotations

import pytest

from jp_primary.client.messages import (
    FileMessage,
    Malformed,
    Registration,
    format_file_message,
    parse,
)

JOBID = "https://lb.example.org:9000/kJ4mO8uLbQ3iP-Xw_2dfZA"


def test_registration_is_jobid_then_owner() -> None:
    assert parse(f"{JOBID}\n/O=CESNET/CN=Ales Krenek".encode()) == Registration(
        JOBID, "/O=CESNET/CN=Ales Krenek"
    )


@pytest.mark.parametrize("sep", [" ", "\t", "   ", " \t "])
def test_dump_keys_separated_by_any_blanks(sep: str) -> None:
    msg = parse(f"jobid{sep}{JOBID}\nfile{sep}/var/spool/x.1\n".encode())
    assert msg == FileMessage(JOBID, "/var/spool/x.1")


def test_dump_exporter_quirk_without_newline_before_jpps() -> None:
    msg = parse(
        f"jobid  {JOBID}\nfile   /var/spool/lbexport/abc.1_2jpps   jp.example.org:8901".encode()
    )
    assert isinstance(msg, FileMessage)
    assert msg.file == "/var/spool/lbexport/abc.1_2"
    assert msg.jpps == "jp.example.org:8901"


def test_sandbox_message_round_trips() -> None:
    msg = FileMessage(
        JOBID, "/spool/files/m", "osb", "out", "http://h:1", "/tmp/x509up_u1", ("a", "b/c")
    )
    assert parse(format_file_message(msg)) == msg


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"\x00\x01\x02garbage\xff", "binary"),
        (b"\xff\xfe not utf-8", "UTF-8"),
        (f"jobid {JOBID}\n".encode(), "no file"),
        (b"jobid not-a-jobid\nfile /x\n", "not a jobid"),
        (b"https://lb.example.org:9000/a b\nowner\n", "not a jobid"),
        (f"jobid {JOBID}\nfile /x\ncolour red\n".encode(), "unknown key"),
        (f"jobid {JOBID}\nfile /x\nclass jdl\n".encode(), "class"),
        (f"{JOBID}\n".encode(), "two lines"),
    ],
)
def test_malformed_messages_say_why(data: bytes, says: str) -> None:
    with pytest.raises(Malformed, match=says):
        parse(data)
