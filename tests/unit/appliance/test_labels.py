"""Every setting has a label and one line of help, and every refusal says the rule in words."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from appliance.admin_backend import ApplianceBackend
from appliance.config import field_specs, layer_specs, save_config, validate_settings
from appliance.settings import SECTIONS, Settings
from appliance.state import DaemonState
from provisioning.errors import InvalidInput
from provisioning.settings_form import coerce

# What a message must not contain: the pieces of a regular expression.
REGEX_BITS = re.compile(r"\^|\$|\[[^\]]*-[^\]]*\]|\{\d+,\d+\}|\\s")


def _generated(key: str) -> str:
    """The label a page derives from a key name: what the schema's labels replace."""
    return key.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def test_every_key_has_a_label_and_one_line_of_help():
    specs = field_specs() + layer_specs()
    for spec in specs:
        assert spec["label"].strip() and spec["label"][0].isupper(), spec["key"]
        assert spec["help"].strip() and "\n" not in spec["help"], spec["key"]
        assert len(spec["help"]) <= 100, spec["key"]
        assert spec["section_title"] == SECTIONS[spec["section"].split(".")[0]][0]
    per_section = Counter((s["section"], s["label"]) for s in specs)
    assert max(per_section.values()) == 1, per_section.most_common(1)
    assert set(SECTIONS) == {s["section"] for s in field_specs()}


@pytest.mark.parametrize(
    ("key", "label"),
    [("http.tls", "HTTPS"), ("media.udp_port_min", "Lowest UDP port"), ("http.public_url", None)],
)
def test_labels_are_written_not_derived_from_key_names(key, label):
    spec = next(s for s in field_specs() if s["key"] == key)
    assert spec["label"] != _generated(key)
    if label:
        assert spec["label"] == label


def test_every_pattern_is_explained_in_words():
    for spec in field_specs() + layer_specs():
        if "pattern" in spec or "item_pattern" in spec:
            assert spec.get("rule") and not REGEX_BITS.search(spec["rule"]), spec["key"]


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"unit": {"name": "Bad Name!"}}, "unit.name", "lowercase letters a-z, digits and hyphens"),
        ({"http": {"listen": "nowhere"}}, "http.listen", "HOST:PORT"),
        ({"media": {"stun_servers": ["http://x"]}}, "media.stun_servers[0]", "stun:"),
        ({"kiosk": {"remote_api_key_sid": "SKnope"}}, "kiosk.remote_api_key_sid", "32 digits"),
        ({"camera": {"layers": [{"name": "Big!"}]}}, "camera.layers[0].name", "1 to 16"),
        ({"media": {"udp_port_min": 50000}}, "media.udp_port_max", "lowest at most the highest"),
    ],
)
def test_config_messages_say_the_rule_not_the_regex(data, key, words):
    problems = validate_settings(data)
    assert words in problems[key], problems
    assert not REGEX_BITS.search(problems[key]), problems[key]


@pytest.fixture
def page_backend(tmp_path: Path) -> ApplianceBackend:
    config = tmp_path / "config.toml"
    save_config(config, Settings())
    state = DaemonState.open(Settings(), config, tmp_path / "data")
    return ApplianceBackend(state, lambda _keys: None)


def test_the_settings_page_shows_the_schema_labels_grouped(page_backend):
    fields = page_backend.settings_schema()
    by_path = {f.path: f for f in fields}
    assert by_path["http.tls"].label == "HTTPS" and by_path["http.tls"].section == "Web server"
    assert by_path["camera.layers.1.width"].label == "Layer 2: width (pixels)"
    assert by_path["camera.layers.0.width"].maximum == 1920
    schema = {s["key"]: s for s in field_specs()}
    for f in fields:
        if not f.path.startswith("camera.layers."):
            assert (f.label, f.help) == (schema[f.path]["label"], schema[f.path]["help"])
        assert f.help and f.section_help, f.path
    # Sections come in schema order, each in one block.
    order = [f.section for f in fields]
    assert [s for i, s in enumerate(order) if i == 0 or order[i - 1] != s] == [
        title for title, _ in SECTIONS.values()
    ]


def test_the_form_says_the_unit_name_rule_in_words(page_backend):
    spec = next(f for f in page_backend.settings_schema() if f.path == "unit.name")
    with pytest.raises(InvalidInput) as refused:
        coerce(spec, "Bad Name!", from_form=True)
    message = str(refused.value)
    assert message.startswith("Use lowercase letters a-z, digits and hyphens, 1 to 63 characters")
    assert not REGEX_BITS.search(message)
    assert coerce(spec, "lobby-2", from_form=True) == "lobby-2"
