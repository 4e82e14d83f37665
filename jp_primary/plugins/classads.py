"""ClassAd / JDL text to plain ``(attribute, value)`` pairs, through HTCondor's ``classad2``.

Three spellings are accepted because all three occur in job records:

* a bracketed ClassAd, ``[ a = 1; b = "x"; ]`` (what the gLite UI sent to L&B and JP);
* the bracketless gLite JDL file, ``a = 1; b = "x";`` (what users wrote on disk);
* the HTCondor "old" line format, ``a = 1`` one attribute per line (``condor_q -l``).

``classad2`` is lenient in ways that would silently lose data (``parseOne`` returns an empty ad
for garbage, the bracket parser ignores anything after the closing ``]``, the Old parser drops
the unreadable end of a line), so only its strict bracketed parser is used and the text around
the ad is checked here: anything unaccounted for is a ``ValueError``.
"""

from __future__ import annotations

import re

import classad2

# Each meaningful line of the old format must begin with ``Name =``.
_OLD_ASSIGNMENT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def classad_values(text: str) -> list[tuple[str, str]]:
    """Parse ClassAd / JDL ``text``; return ``(name, value)`` for each attribute, sorted by name.

    String literals come back unquoted and unescaped, integers and reals in their decimal form,
    booleans as ``true``/``false``, and everything else (lists, nested ads, expressions,
    ``undefined``) as its one-line ClassAd text. Raises ``ValueError`` for unparsable input.
    """
    stripped = _strip_leading_comments(_blank_hash_comments(text))
    if not stripped:
        raise ValueError("no ClassAd found: the text is empty")
    parse = _parse_bracketed if stripped.startswith("[") else _parse_bracketless
    ad = parse(stripped)
    return sorted(((name, _render(ad, name)) for name in ad), key=lambda pair: pair[0].lower())


def _parse_bracketed(text: str) -> classad2.ClassAd:
    end = _closing_bracket(text)
    rest = _strip_leading_comments(text[end + 1 :])
    if rest:
        raise ValueError(f"unexpected text after the closing ']': {rest[:40]!r}")
    return _new_style(text[: end + 1])


def _parse_bracketless(text: str) -> classad2.ClassAd:
    """A gLite JDL without the outer brackets, or else HTCondor's old line format."""
    try:
        return _new_style(f"[\n{text}\n]")
    except ValueError as new_style_error:
        try:
            return _old_style(text)
        except ValueError as old_style_error:
            # Without any ';' the author meant the line format: its message is the useful one.
            raise (new_style_error if ";" in text else old_style_error) from None


def _new_style(text: str) -> classad2.ClassAd:
    try:
        return classad2.ClassAd(text)
    except (classad2.ClassAdException, ValueError) as exc:
        raise ValueError(f"not a valid ClassAd: {_first_line(str(exc))}") from exc


def _old_style(text: str) -> classad2.ClassAd:
    """The line format, re-spelled as a bracketed ad so that the strict parser checks each value.

    (``classad2``'s own Old parser drops whatever it cannot read at the end of a line.)
    """
    assignments: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.strip()
        if not content or content.startswith("//"):
            continue
        if _OLD_ASSIGNMENT.match(content) is None:
            raise ValueError(f"line {number} is not an attribute assignment: {content[:40]!r}")
        assignments.append(content)
    return _new_style("[\n" + ";\n".join(assignments) + "\n]")


def _render(ad: classad2.ClassAd, name: str) -> str:
    literal = ad[name]
    if isinstance(literal, classad2.Value):  # undefined / error: an int enum, keep its keyword
        return repr(ad.lookup(name)).strip()
    if isinstance(literal, bool):
        return "true" if literal else "false"
    if isinstance(literal, float):
        return repr(literal)  # shortest round-trip form ("1.5", not "1.500000000000000E+00")
    if isinstance(literal, str | int):
        return str(literal)
    return repr(ad.lookup(name)).strip()


def _closing_bracket(text: str) -> int:
    """Index of the ``]`` closing the ``[`` at ``text[0]`` (strings and comments skipped)."""
    depth = 0
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            index = _skip_string(text, index)
            continue
        if text.startswith("//", index):
            index = _line_end(text, index)
            continue
        if text.startswith("/*", index):
            index = _comment_end(text, index)
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError("not a valid ClassAd: the opening '[' is never closed")


def _skip_string(text: str, start: int) -> int:
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index + 1
        index += 1
    raise ValueError("not a valid ClassAd: unterminated string literal")


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end + 1


def _comment_end(text: str, start: int) -> int:
    end = text.find("*/", start + 2)
    if end < 0:
        raise ValueError("not a valid ClassAd: unterminated /* comment")
    return end + 2


def _blank_hash_comments(text: str) -> str:
    """Blank out ``# ...`` comments, which gLite JDL allowed but the ClassAd parser rejects."""
    if "#" not in text:
        return text
    pieces: list[str] = []
    index = 0
    while index < len(text):
        if text[index] == '"':
            end = _skip_string(text, index)
        elif text.startswith("//", index):
            end = _line_end(text, index)
        elif text.startswith("/*", index):
            end = _comment_end(text, index)
        elif text[index] == "#":
            end = _line_end(text, index)
            pieces.append("\n" if text[end - 1 : end] == "\n" else "")
            index = end
            continue
        else:
            end = index + 1
        pieces.append(text[index:end])
        index = end
    return "".join(pieces)


def _strip_leading_comments(text: str) -> str:
    """``text`` without leading whitespace and ``//`` / ``/* */`` comments."""
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if text.startswith("//", index):
            index = _line_end(text, index)
        elif text.startswith("/*", index):
            index = _comment_end(text, index)
        else:
            return text[index:]


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "parse error"
