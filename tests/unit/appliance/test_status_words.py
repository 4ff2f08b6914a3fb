"""The unit's state in words, as docs/roles.md and the status page say it."""

from __future__ import annotations

import pytest

from appliance.status import state_in_words


@pytest.mark.parametrize(
    ("state", "muted", "missing", "words"),
    [
        (
            "in_call",
            True,
            {"speaker": "x", "microphone": "y"},
            "In a call — muted (without microphone, speaker)",
        ),
        ("in_call", False, {}, "In a call"),
        ("idle", True, {}, "Idle"),  # muted counts only in a call
        ("idle", False, {"camera": "gone"}, "Idle (without camera)"),
        ("error", False, {}, "Not connected"),
        ("serving", False, {}, "Serving rooms"),
        ("some_new_state", False, {}, "Some new state"),
    ],
)
def test_state_in_words(state: str, muted: bool, missing: dict[str, str], words: str) -> None:
    assert state_in_words(state, muted, missing) == words
