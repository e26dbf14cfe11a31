"""The content types a file can be recognised as from its bytes (engine/records/uploads.py
sniffs them; a file field's `accept` may only list these, or a family such as `image/*`)."""

from __future__ import annotations

import filetype

TEXT = "text/plain"  # bytes that are UTF-8 text without control characters
UNKNOWN = "application/octet-stream"  # bytes no signature names and that are not text
KNOWN_TYPES = frozenset({t.mime for t in filetype.types} | {TEXT, UNKNOWN})
KNOWN_FAMILIES = frozenset(t.split("/")[0] for t in KNOWN_TYPES)


def known_accept(entry: str) -> bool:
    """Whether an `accept` entry names a recognisable type or family (`image/*`)."""
    family, slash, rest = entry.partition("/")
    if rest == "*":
        return family in KNOWN_FAMILIES
    return entry in KNOWN_TYPES
