"""Text the database can keep: pure, no I/O.

PostgreSQL's `text` can't hold NUL, and no database takes a lone surrogate (a Python str can
hold one, from a JSON `"\\ud800"`, but UTF-8 can't encode it). Intake cleans what people wrote
with `storable` before recording it, so such a message becomes a task instead of an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REPLACEMENT = "\ufffd"

# C0 control characters but tab, line feed and carriage return; and every surrogate code
# point (in a Python str any one of them is unpaired: decoding joins valid pairs).
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


@dataclass(frozen=True)
class Cleaned:
    """`text` with each character no database can keep replaced by U+FFFD, `replaced` times."""

    text: str
    replaced: int


def storable(text: str) -> Cleaned:
    """The text with NUL, the other C0 controls (but `\\t`, `\\n`, `\\r`) and lone surrogates
    replaced by U+FFFD; any other text, emoji included, comes back unchanged."""
    cleaned, replaced = _UNSTORABLE.subn(REPLACEMENT, text)
    return Cleaned(text=cleaned, replaced=replaced)


def replaced_note(replaced: int) -> str:
    """What intake appends to a message it had to change, in plain words."""
    characters = "character" if replaced == 1 else "characters"
    return f"(pmteam replaced {replaced} {characters} it can't store with {REPLACEMENT}.)"
