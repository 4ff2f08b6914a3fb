"""What a name or other short text from a client may contain: one rule, stated once.

Room names, identities and every string parameter of the REST API refuse the characters
that make text lie about itself in a log line or a user interface: C0 and C1 controls, the
soft hyphen, bidirectional controls and marks, zero-width characters, line and paragraph
separators, invisible operators, the byte-order mark, interlinear annotation characters, the
replacement character (what undecodable bytes become) and lone surrogates. It is a fixed list
rather than ``str.isprintable`` so that it does not move with the Unicode version of the
Python running the unit, and so that the OpenAPI document can state it exactly
(``FORBIDDEN_PATTERN`` is its character class).
"""

from __future__ import annotations

import re

#: The class the OpenAPI document states. Lone surrogates are refused too, but only JSON can
#: carry one (UTF-8 cannot encode it, so no form or query can), hence not in the document.
FORBIDDEN_PATTERN = (
    r"[\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
    r"\ufff9-\ufffb\ufffd]"
)
_FORBIDDEN = re.compile(FORBIDDEN_PATTERN[:-1] + r"\ud800-\udfff]")


def is_clean(text: str) -> bool:
    """Whether ``text`` holds none of the forbidden characters."""
    return _FORBIDDEN.search(text) is None
