"""Reading lines in bounded memory (issue 14, defect 3)."""

from __future__ import annotations

import io

from jp_primary.plugins.lines import bounded_lines


def test_lines_within_the_limit_come_back_whole() -> None:
    stream = io.BytesIO(b"one\ntwo\r\nthree")
    assert list(bounded_lines(stream, 5)) == [b"one\n", b"two\r\n", b"three"]


def test_a_line_exactly_at_the_limit_is_kept() -> None:
    assert list(bounded_lines(io.BytesIO(b"abcde\nx\n"), 5)) == [b"abcde\n", b"x\n"]


def test_defect_3_overlong_lines_are_skipped_not_held() -> None:
    stream = io.BytesIO(b"ok\n" + b"z" * 5_000_000 + b"\nafter\n" + b"y" * 100)
    assert list(bounded_lines(stream, 64)) == [b"ok\n", None, b"after\n", None]
