"""The ``jdl`` class: a job's ClassAd (gLite JDL or HTCondor job ad) as ``http://jdl:<attr>``.

The original JP called this class ``classad`` (``urn:org.glite.jp.primary:classad``); both are
accepted as aliases. Every attribute of the ad becomes one value, rendered by
:func:`jp_primary.plugins.classads.classad_values`, stamped with the file's commit time.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from jp_primary.attributes.names import JDL_FILE
from jp_primary.plugins.base import DerivedValue, ExtractContext, Extraction, ExtractionProblem
from jp_primary.plugins.classads import classad_values

# A job description is a few kilobytes; anything this large is not one and is not parsed.
MAX_JDL_BYTES = 16 * 1024 * 1024


class JDLPlugin:
    name: ClassVar[str] = "jdl"
    classes: ClassVar[tuple[str, ...]] = ("jdl",)
    aliases: ClassVar[dict[str, str]] = {
        "urn:org.glite.jp.primary:classad": "jdl",
        "classad": "jdl",
    }
    namespaces: ClassVar[tuple[str, ...]] = (JDL_FILE,)
    # The counts of the gLite JDL; every other ClassAd attribute is kept as its expression text.
    attribute_types: ClassVar[dict[str, str]] = {
        "jdl:RetryCount": "integer",
        "jdl:ShallowRetryCount": "integer",
        "jdl:NodeNumber": "integer",
        "jdl:CpuNumber": "integer",
    }

    def extract(self, path: Path, context: ExtractContext) -> Extraction:
        extraction = Extraction()
        size = path.stat().st_size
        if size > MAX_JDL_BYTES:
            message = f"file is {size} bytes, larger than a ClassAd can be ({MAX_JDL_BYTES})"
            extraction.errors.append(ExtractionProblem(message))
            return extraction
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", errors="replace")
            problem = f"not valid UTF-8 at byte {exc.start}; undecodable bytes were replaced"
            extraction.errors.append(ExtractionProblem(problem))
        try:
            pairs = classad_values(text)
        except ValueError as exc:
            extraction.errors.append(ExtractionProblem(f"unparsable ClassAd: {exc}"))
            return extraction
        extraction.values.extend(
            DerivedValue(
                name=f"{JDL_FILE}:{attribute}", value=value, timestamp=context.committed_at
            )
            for attribute, value in pairs
        )
        return extraction
