"""The ULM line format of L&B events: ``KEY=value KEY="quoted \\"value\\"" ...``.

One event per line. Keys are case-insensitive (returned upper-cased) and values are either bare
tokens (``DATE``, ``LVL``, ``DG.PRIORITY``) or double-quoted strings in which ``"`` and ``\\`` are
backslash-escaped and a newline is written as ``\\n``. Purge and dump files prefix each line with
``DG.ARRIVED=<date>``, which is returned like any other key.

Two parsers give the same result: a fast one that splits at the quotes and remembers the layout
of each event type's lines, and a general regular-expression one that also handles tabs and words
the errors. Pure functions: no I/O. Errors carry the line number they were given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# One ``KEY=value`` pair, optionally preceded by blanks (the general, slower path). The quoted
# alternative uses the "unrolled loop" form and the key possessive quantifiers, so multi-megabyte
# values and garbage do not backtrack; a bare value holds no quote, so an unterminated or
# misplaced quote is a gap in the matches, which is how errors are found.
_PAIR = re.compile(r'[ \t]*+([A-Za-z][A-Za-z0-9_.]*+)=(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^"\s]*))')
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPED = {"n": "\n"}


class ULMError(ValueError):
    """A line that is not valid ULM; ``line`` is the 1-based line number when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.message = message
        self.line = line


def unescape(value: str) -> str:
    """Undo ULM escaping: ``\\n`` is a newline, any other ``\\x`` is ``x``."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(1)), value)


def escape(value: str) -> str:
    """ULM-escape ``value`` for use between double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_line(line: str, line_number: int | None = None) -> dict[str, str]:
    """Parse one ULM line into ``{UPPER-CASE KEY: unescaped value}``.

    A key that occurs twice keeps its first value (later duplicates are ignored like unknown
    keys). Raises ``ULMError`` for text that is not a sequence of ``KEY=value`` pairs.
    """
    if "\t" not in line and "\x00" not in line and "\x01" not in line:
        fields = _parse_split(line)
        if fields is not None:
            return fields
    return _parse_general(line, line_number)


def _parse_split(line: str) -> dict[str, str] | None:
    """Fast path: split at the quotes.

    Escaped backslashes and quotes are first swapped for placeholder characters, so the pieces
    alternate between text outside quotes (bare ``KEY=value`` tokens, then the ``KEY=`` of the
    next quoted value) and quoted values. Anything irregular returns None and is left to the
    general parser, which also words the error.
    """
    escaped = "\\" in line
    if escaped:
        line = line.replace("\\\\", "\x00").replace('\\"', "\x01")
    pieces = line.split('"')
    if len(pieces) % 2 == 0:
        return None  # an odd number of quotes: unterminated
    if len(pieces) > 1:
        fields = _parse_with_layout(pieces, escaped)
        if fields is not None:
            return fields
    return _parse_pieces(pieces, escaped)


def _parse_with_layout(pieces: list[str], escaped: bool) -> dict[str, str] | None:
    """Lines of one event type share everything outside the quotes after the first value.

    That outside text (the "layout") is parsed once and remembered; a line then costs a split,
    a dictionary look-up and a zip. The first outside piece (DATE, HOST) varies and is parsed.
    Lines with escapes use it too, with their quoted values restored afterwards.
    """
    shape = tuple(pieces[2::2])
    layout = _LAYOUTS.get(shape, _UNLEARNED)
    if layout is _UNLEARNED:
        layout = _learn_layout(shape)
    if layout is None:
        return None
    keys, bare, names = layout
    fields: dict[str, str] = {}
    head = pieces[0]
    if head[-1:] != "=" or (escaped and _has_placeholder(head)):
        return None
    space = head.rfind(" ")
    if space > 0 and not _add_bare(fields, head[:space]):
        return None
    first = _KEY_UPPER.get(head[space + 1 : -1]) or _learn_key(head[space + 1 : -1])
    if first is None or first in fields or first in names or not names.isdisjoint(fields):
        return None  # a key repeated: let the general rules (first one wins) apply
    values = pieces[1::2]
    if escaped:
        values = [_restore(value) for value in values]
    fields[first] = values[0]
    # Equally long, as both come from the shape; strict=True would cost a keyword parse per line.
    fields.update(zip(keys, values[1:]))  # noqa: B905
    fields.update(bare)
    return fields


# A layout: the keys of the quoted values after the first, the bare fields, and all their names.
_Layout = tuple[tuple[str, ...], dict[str, str], frozenset[str]]
_LAYOUTS: dict[tuple[str, ...], _Layout | None] = {}  # None: irregular, use the loop
_UNLEARNED: _Layout = ((), {}, frozenset())  # marks a shape not seen yet


def _learn_layout(shape: tuple[str, ...]) -> _Layout | None:
    """Parse the outside pieces after the first quoted value; None when irregular."""
    keys: list[str] = []
    bare: dict[str, str] = {}
    regular = not any(_has_placeholder(body) for body in shape)
    for index, body in enumerate(shape if regular else ()):
        is_tail = index == len(shape) - 1
        if is_tail:
            if body.strip() and (body[:1] != " " or not _add_bare(bare, body)):
                regular = False
            break
        if body[:1] != " " or body[-1:] != "=":
            regular = False
            break
        space = body.rfind(" ")
        key = _KEY_UPPER.get(body[space + 1 : -1]) or _learn_key(body[space + 1 : -1])
        if key is None or (space > 0 and not _add_bare(bare, body[:space])):
            regular = False
            break
        keys.append(key)
    names = frozenset(keys) | frozenset(bare)
    distinct = len(names) == len(keys) + len(bare)
    layout = (tuple(keys), bare, names) if regular and distinct else None
    if len(_LAYOUTS) < 4096:
        _LAYOUTS[shape] = layout
    return layout


def _has_placeholder(text: str) -> bool:
    """An escaped quote or backslash outside quotes: a quote inside a bare value."""
    return "\x00" in text or "\x01" in text


def _parse_pieces(pieces: list[str], escaped: bool) -> dict[str, str] | None:
    last = len(pieces) - 1
    fields: dict[str, str] = {}
    for index in range(0, last, 2):
        body = pieces[index]
        if index and body[:1] != " ":
            return None  # text glued to the closing quote
        if body[-1:] != "=" or (escaped and ("\x00" in body or "\x01" in body)):
            return None  # a quote inside a bare value
        space = body.rfind(" ")
        if space > 0 and body[:space].strip() and not _add_bare(fields, body[:space]):
            return None
        key = _KEY_UPPER.get(body[space + 1 : -1]) or _learn_key(body[space + 1 : -1])
        if key is None:
            return None
        if key not in fields:
            fields[key] = _restore(pieces[index + 1]) if escaped else pieces[index + 1]
    tail = pieces[last]
    if escaped and ("\x00" in tail or "\x01" in tail):
        return None
    if tail.strip() and ((last and tail[0] != " ") or not _add_bare(fields, tail)):
        return None
    return fields or None


def _restore(value: str) -> str:
    """Undo the placeholders of ``_parse_split`` and the remaining escapes (``\\n``)."""
    return unescape(value).replace("\x00", "\\").replace("\x01", '"')


def _add_bare(fields: dict[str, str], text: str) -> bool:
    """Add the bare ``KEY=value`` tokens of ``text``; False if one is not such a token."""
    for token in text.split():
        name, sep, value = token.partition("=")
        key = _KEY_UPPER.get(name) or _learn_key(name)
        if not sep or key is None:
            return False
        if key not in fields:
            fields[key] = value
    return True


# Keys repeat on every line: remember each valid one with its upper-case form (boundedly).
_KEY_UPPER: dict[str, str] = {}
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")


def _learn_key(name: str) -> str | None:
    if _KEY.fullmatch(name) is None:
        return None
    key = name.upper()
    if len(_KEY_UPPER) < 10_000:
        _KEY_UPPER[name] = key
    return key


def _parse_general(line: str, line_number: int | None) -> dict[str, str]:
    # Anchored matches one after the other: a search (finditer) would rescan a long garbage
    # line from every position, quadratic in its length.
    fields: dict[str, str] = {}
    position = 0
    end = len(line.rstrip())
    while position < end:
        match = _PAIR.match(line, position)
        glued = position > 0 and match is not None and match.start(1) == position
        if match is None or glued or match.end() == position:
            break
        quoted = match.group(2)
        value = unescape(quoted) if quoted is not None else match.group(3)
        fields.setdefault(match.group(1).upper(), value)
        position = match.end()
    if position < end:
        raise ULMError(_describe_gap(line, position), line_number)
    if not fields:
        raise ULMError("no KEY=value fields", line_number)
    return fields


def _describe_gap(line: str, position: int) -> str:
    rest = line[position:].lstrip(" \t")
    column = len(line) - len(rest) + 1
    snippet = rest[:40]
    if rest.startswith('"'):
        if '"' not in rest[1:].replace("\\\\", "").replace('\\"', ""):
            return f"unterminated quoted value at column {column}: {snippet!r}"
        return f"misplaced quote at column {column}: {snippet!r}"
    if position > 0 and line[position] not in " \t":
        return f"missing blank between fields at column {column}: {snippet!r}"
    return f"expected KEY=value at column {column}: {snippet!r}"


def format_line(pairs: Iterable[tuple[str, str, bool]]) -> str:
    """Render ``(key, value, quoted)`` triples as one ULM line (no trailing newline)."""
    parts = []
    for key, value, quoted in pairs:
        parts.append(f'{key}="{escape(value)}"' if quoted else f"{key}={value}")
    return " ".join(parts)
