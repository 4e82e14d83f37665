"""What text may reach storage: one rule set for every route, service and plugin value.

Both databases must store a text exactly, or it must be refused before it reaches them: PostgreSQL
cannot hold NUL in any text column, neither database driver can encode a lone UTF-16 surrogate to
UTF-8, and PostgreSQL refuses a ``VARCHAR(n)`` value of more than ``n`` characters where SQLite
would silently keep it. Refusing up front (422) keeps one client's bad text its own error, never a
500 inside a transaction shared with other clients' writes.

``check_text`` is for code that is handed text (services, plugins); the ``*Text`` types are for
request models and parameters, where pydantic turns the same rule into a 422.
"""

from __future__ import annotations

import re
from typing import Annotated

from annotated_types import MaxLen
from pydantic import AfterValidator, WithJsonSchema

from jp_primary.errors import InvalidInput

# Column lengths of the schema, named once (db/models.py uses the same numbers).
SUBJECT_MAX = 1024  # identities.subject, jobs.jobid, origin_detail, locations
KEY_MAX = 128  # jobs.key
NAME_MAX = 255  # file names, content types, tag names
ATTRIBUTE_NAME_MAX = 512  # attribute_values.name
CLASS_MAX = 64  # file classes
VALUE_MAX = 65536  # a tag value (values are TEXT; this bounds one request's storage)
UPLOAD_ID_MAX = 64  # uploads.id
DERIVED_VALUE_MAX = 1024 * 1024  # a value a plugin derives from a file (TEXT; bounds one file)
PROBLEM_TEXT_MAX = 1000  # one extraction problem's message as stored and returned
URL_MAX = 2048  # feeds.destination

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")

# RFC 9110 §8.3.1 media-type = type "/" subtype parameters, in ASCII only: the value is sent back
# as a Content-Type header, where CR, LF, NUL or a non-Latin-1 character would break the response.
_TCHAR = r"[!#$%&'*+.^_`|~0-9A-Za-z-]"
_TOKEN = f"{_TCHAR}+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_MEDIA_TYPE_GRAMMAR = rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*(?:{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))?)*"
_MEDIA_TYPE = re.compile(_MEDIA_TYPE_GRAMMAR, re.ASCII)
_MEDIA_TYPE_PATTERN = f"^{_MEDIA_TYPE_GRAMMAR}$"


def text_problem(value: str, max_length: int) -> str | None:
    """Why ``value`` cannot be stored as it is (None when it can)."""
    if len(value) > max_length:
        return f"is {len(value)} characters long; at most {max_length} are stored"
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character, which cannot be stored"
    return "contains a lone UTF-16 surrogate (not valid Unicode text); send valid UTF-8"


def media_type_problem(value: str) -> str | None:
    """Why ``value`` is not a storable media type (None when it is)."""
    problem = text_problem(value, NAME_MAX)
    if problem is not None:
        return problem
    if _MEDIA_TYPE.fullmatch(value) is None:
        return (
            "is not a media type (RFC 9110: type/subtype with optional ;name=value parameters, "
            "ASCII only, e.g. text/plain; charset=utf-8)"
        )
    return None


def check_media_type(value: str | None, what: str = "content type") -> str | None:
    """``value`` unchanged (None stays None), or ``InvalidInput`` (422) saying what is wrong."""
    if value is None:
        return None
    problem = media_type_problem(value)
    if problem is not None:
        raise InvalidInput(f"{what} {problem}")
    return value


def shown(value: str) -> str:
    """``value`` as a response may echo it: lone surrogates (which no UTF-8 body can carry)
    become ``\\udXXX`` escapes; everything else is unchanged."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def storable_characters(value: str) -> str:
    """``value`` with every character no database stores (NUL, lone surrogates) made U+FFFD."""
    return _FORBIDDEN.sub("\ufffd", value)


def check_text(value: str, what: str, max_length: int) -> str:
    """``value`` unchanged, or ``InvalidInput`` (422) naming ``what`` and how to fix it."""
    problem = text_problem(value, max_length)
    if problem is not None:
        raise InvalidInput(f"{what} {problem}")
    return value


def _storable(max_length: int) -> AfterValidator:
    def valid(value: str) -> str:
        problem = text_problem(value, max_length)
        if problem is not None:
            raise ValueError(f"the text {problem}")
        return value

    return AfterValidator(valid)


def _valid_media_type(value: str) -> str:
    problem = media_type_problem(value)
    if problem is not None:
        raise ValueError(f"the value {problem}")
    return value


# ``str`` types for request models and parameters (MaxLen also documents the limit in OpenAPI).
SubjectText = Annotated[str, MaxLen(SUBJECT_MAX), _storable(SUBJECT_MAX)]
KeyText = Annotated[str, MaxLen(KEY_MAX), _storable(KEY_MAX)]
NameText = Annotated[str, MaxLen(NAME_MAX), _storable(NAME_MAX)]
AttributeNameText = Annotated[str, MaxLen(ATTRIBUTE_NAME_MAX), _storable(ATTRIBUTE_NAME_MAX)]
ClassText = Annotated[str, MaxLen(CLASS_MAX), _storable(CLASS_MAX)]
ValueText = Annotated[str, MaxLen(VALUE_MAX), _storable(VALUE_MAX)]
UploadIdText = Annotated[str, MaxLen(UPLOAD_ID_MAX), _storable(UPLOAD_ID_MAX)]
UrlText = Annotated[str, MaxLen(URL_MAX), _storable(URL_MAX)]
# The grammar is also published in the OpenAPI document (validation stays with the clearer message).
MediaTypeText = Annotated[
    str,
    MaxLen(NAME_MAX),
    AfterValidator(_valid_media_type),
    WithJsonSchema({"type": "string", "maxLength": NAME_MAX, "pattern": _MEDIA_TYPE_PATTERN}),
]
