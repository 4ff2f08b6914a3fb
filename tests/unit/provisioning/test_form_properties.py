"""Property tests of the settings form: any text in any field gives a result or a message."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.settings_form import check_settings, parse_form, render_form
from tests.support.provisioning_backend import SCHEMA, default_config

PATHS = [s.path for s in SCHEMA]
text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", "0", "-1", "1e999", "nan", "<script>", "on", "stun:a:1", "kiosk"]),
    st.integers(-(10**30), 10**30).map(str),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(PATHS), text, max_size=len(PATHS)))
def test_any_form_input_parses_or_explains(overrides: dict[str, str]) -> None:
    from .test_flows import settings_form_values

    class _B:
        def load_settings(self) -> dict[str, Any]:
            return default_config()

        def settings_schema(self) -> Any:
            return SCHEMA

    form = {**settings_form_values(_B()), **overrides}  # type: ignore[arg-type]
    new, errors = parse_form(SCHEMA, form, default_config())
    if not errors:
        assert check_settings(SCHEMA, new) == {}  # what the form accepts, an import accepts
    html = render_form(SCHEMA, new, errors, form)
    assert "<script>" not in html


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.one_of(
            st.none().map(lambda _: ""),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=20),
        ),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=8), children, max_size=4),
        ),
        max_leaves=30,
    )
)
def test_any_imported_value_is_checked_without_crashing(junk: Any) -> None:
    data = default_config()
    data["camera"] = junk
    data["extra"] = {"note": junk}
    errors = check_settings(SCHEMA, data)
    assert isinstance(errors, dict)
    if not isinstance(junk, dict):
        assert any(k.startswith("camera.") for k in errors)
