"""Attribute types: parse, normalize, order-preserving index keys, comparison.

Every stored value is text (WORM: what was recorded is what is returned). A type says how that
text is read when a query or a feed condition compares it: ``lb:doneCode > 0`` compares numbers,
``system:regtime within [a, b]`` compares instants whatever zone each text was written in.

The index key is a string whose plain code-point order (SQLite ``BINARY``, PostgreSQL
``COLLATE "C"``) is the order of the parsed values, so that one key column and one index serve
every type. Two texts have equal keys exactly when they parse to equal values, except for
strings longer than ``KEY_CHARS`` (the key is a prefix; see ``StringType``). A text that does not
parse as its attribute's type has no key: it never satisfies an ordering comparison, but still
counts for ``exists`` and ``ne``.

Pure code: no I/O.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar
from xml.parsers import expat

# Characters of a string kept in its key. A PostgreSQL B-tree entry holds at most ~2,700 bytes,
# and the (name, key, job) entry must fit with a 512-character name: 128 characters are at most
# 512 bytes in UTF-8.
KEY_CHARS = 128
# Digits an integer may have: its key (sign class, three-digit count, digits) fits KEY_CHARS.
INTEGER_DIGITS = 120

_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class AttributeType:
    """The base of every type: a name, parsing, normalized text, index keys, comparison."""

    name: str = ""
    ordered: ClassVar[bool] = True  # lt/gt/within make sense
    textual: ClassVar[bool] = False  # prefix makes sense

    def parse(self, text: str) -> object:
        """The value ``text`` stands for; ``ValueError`` with a human message if it is none."""
        raise NotImplementedError

    def normalize(self, text: str) -> str:
        """The canonical text of the value (``ValueError`` if ``text`` does not parse)."""
        return str(self.parse(text))

    def key_of(self, value: object) -> str:
        """The index key of a parsed value."""
        raise NotImplementedError

    def index_key(self, text: str) -> str | None:
        """The order-preserving key of ``text``, or None when it does not parse as this type."""
        try:
            return self.key_of(self.parse(text))
        except ValueError:
            return None

    def compare(self, left: str, right: str) -> int:
        """-1, 0 or 1 as ``left`` is less than, equal to or greater than ``right`` (parsed)."""
        a, b = self.parse(left), self.parse(right)
        return (a > b) - (a < b)  # type: ignore[operator]

    def __repr__(self) -> str:
        return f"<attribute type {self.name}>"


class StringType(AttributeType):
    """Text compared by code points (as PostgreSQL ``COLLATE "C"`` and SQLite compare UTF-8).

    The key is the first ``KEY_CHARS`` characters. Truncation keeps order loosely (a < b implies
    key(a) <= key(b)), so exact comparisons of longer texts also check the text itself."""

    name = "string"
    textual: ClassVar[bool] = True

    def parse(self, text: str) -> object:
        return text

    def normalize(self, text: str) -> str:
        return text

    def key_of(self, value: object) -> str:
        return str(value)[:KEY_CHARS]

    def index_key(self, text: str) -> str | None:
        return text[:KEY_CHARS]


class IntegerType(AttributeType):
    """Decimal integers: ``"10" > "9"``. Key: sign class, digit count, digits."""

    name = "integer"

    def parse(self, text: str) -> int:
        stripped = text.strip()
        if not _INTEGER.fullmatch(stripped):
            raise ValueError(f"{_quote(text)} is not a decimal integer")
        digits = stripped.lstrip("+-").lstrip("0")
        if len(digits) > INTEGER_DIGITS:
            raise ValueError(f"an integer has at most {INTEGER_DIGITS} digits")
        return int(stripped)

    def key_of(self, value: object) -> str:
        number = int(value)  # type: ignore[call-overload]
        if number == 0:
            return "O"
        digits = str(abs(number))
        if number > 0:
            return f"P{len(digits):03d}{digits}"
        # Negative: more digits sort first, and each digit is complemented (9 - d).
        flipped = digits.translate(_COMPLEMENT)
        return f"N{INTEGER_DIGITS - len(digits):03d}{flipped}"


_COMPLEMENT = str.maketrans("0123456789", "9876543210")


class FloatType(AttributeType):
    """Decimal floating-point numbers (IEEE 754 doubles; NaN and infinities are refused)."""

    name = "float"

    def parse(self, text: str) -> float:
        stripped = text.strip()
        if not _FLOAT.fullmatch(stripped):
            raise ValueError(f"{_quote(text)} is not a decimal number")
        number = float(stripped)
        if not math.isfinite(number):
            raise ValueError(f"{_quote(text)} is out of the range of a double")
        return number + 0.0  # -0.0 becomes 0.0: one key for one value

    def normalize(self, text: str) -> str:
        return repr(self.parse(text))

    def key_of(self, value: object) -> str:
        number = float(value)  # type: ignore[arg-type]
        if number == 0:
            number = 0.0
        (bits,) = struct.unpack(">Q", struct.pack(">d", number))
        # The classic sortable form: flip every bit of a negative, only the sign bit otherwise.
        bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63
        return f"{bits:016x}"


class TimestampType(AttributeType):
    """Instants: ISO 8601 / RFC 3339 text with or without a zone (none means UTC, as the L&B
    plugin writes dates). Normalized and keyed as RFC 3339 UTC with microseconds."""

    name = "timestamp"

    def parse(self, text: str) -> datetime:
        stripped = text.strip()
        try:
            if len(stripped) < 10 or not stripped[:4].isdigit():
                raise ValueError
            at = datetime.fromisoformat(stripped)
        except ValueError:
            raise ValueError(
                f"{_quote(text)} is not a timestamp (ISO 8601, e.g. 2026-11-29T10:00:00Z)"
            ) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        try:
            return at.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{_quote(text)} is out of the range of UTC timestamps") from None

    def normalize(self, text: str) -> str:
        return self.key_of(self.parse(text))

    def key_of(self, value: object) -> str:
        if not isinstance(value, datetime):
            raise ValueError("not a timestamp")
        at = value.astimezone(UTC)
        # Formatted by hand: strftime does not pad years before 1000 on every platform.
        return (
            f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:"
            f"{at.second:02d}.{at.microsecond:06d}Z"
        )


class BooleanType(AttributeType):
    """true/false, 1/0, yes/no in any case; false sorts first."""

    name = "boolean"

    def parse(self, text: str) -> bool:
        folded = text.strip().lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
        raise ValueError(f"{_quote(text)} is not a boolean (true/false, 1/0, yes/no)")

    def normalize(self, text: str) -> str:
        return "true" if self.parse(text) else "false"

    def key_of(self, value: object) -> str:
        return "1" if value else "0"


class EnumType(AttributeType):
    """One of a fixed list of labels (case-insensitive), ordered as the list; an integer text is
    read as the position in the list (``lb:doneCode > 0``)."""

    def __init__(self, name: str, labels: Sequence[str]) -> None:
        self.name = name
        self.labels = tuple(labels)
        self._positions = {label.lower(): index for index, label in enumerate(self.labels)}

    def parse(self, text: str) -> int:
        stripped = text.strip()
        position = self._positions.get(stripped.lower())
        if position is None and _INTEGER.fullmatch(stripped) and len(stripped) < 6:
            number = int(stripped)
            position = number if 0 <= number < len(self.labels) else None
        if position is None:
            raise ValueError(f"{_quote(text)} is not one of {', '.join(self.labels)}")
        return position

    def normalize(self, text: str) -> str:
        return self.labels[self.parse(text)]

    def key_of(self, value: object) -> str:
        return f"{int(value):02d}"  # type: ignore[call-overload]


class XMLType(AttributeType):
    """An XML fragment (elements one after another): checked for well-formedness, compared as
    text (eq, ne, in, exists; no ordering)."""

    name = "xml"
    ordered: ClassVar[bool] = False

    def parse(self, text: str) -> str:
        parser = expat.ParserCreate()
        # No DTD, no entities beyond the predefined ones: a fragment is data, not a document.
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.EntityDeclHandler = _refuse_entities
        try:
            parser.Parse(f"<fragment>{text}</fragment>", True)
        except expat.ExpatError as exc:
            raise ValueError(f"not a well-formed XML fragment: {exc}") from None
        return text

    def normalize(self, text: str) -> str:
        return self.parse(text)

    def key_of(self, value: object) -> str:
        return str(value)[:KEY_CHARS]


def _refuse_entities(*_args: object) -> None:
    raise expat.ExpatError("entity declarations are not allowed")


def _quote(text: str) -> str:
    shown = text if len(text) <= 40 else text[:37] + "..."
    return repr(shown)


# The L&B job states in the order of the L&B state list (``edg_wll_JobStatCode``), as
# jp_primary/plugins/lb/status.py ``State`` (a test checks that the two agree).
LB_STATES = (
    "Undefined",
    "Submitted",
    "Waiting",
    "Ready",
    "Scheduled",
    "Running",
    "Done",
    "Cleared",
    "Aborted",
    "Cancelled",
    "Unknown",
    "Purged",
)
# The L&B done codes (``edg_wll_JobStatDoneCode``): OK = 0, FAILED = 1, CANCELLED = 2.
LB_DONE_CODES = ("OK", "FAILED", "CANCELLED")

STRING: AttributeType = StringType()
INTEGER: AttributeType = IntegerType()
FLOAT: AttributeType = FloatType()
TIMESTAMP: AttributeType = TimestampType()
BOOLEAN: AttributeType = BooleanType()
LB_STATE: AttributeType = EnumType("lb_state", LB_STATES)
LB_DONE_CODE: AttributeType = EnumType("lb_done_code", LB_DONE_CODES)
XML: AttributeType = XMLType()

TYPES: dict[str, AttributeType] = {
    t.name: t for t in (STRING, INTEGER, FLOAT, TIMESTAMP, BOOLEAN, LB_STATE, LB_DONE_CODE, XML)
}


def type_named(name: str) -> AttributeType:
    """The type called ``name`` (``KeyError`` naming the known ones otherwise)."""
    try:
        return TYPES[name]
    except KeyError:
        raise KeyError(f"unknown attribute type {name!r}; known: {', '.join(TYPES)}") from None
