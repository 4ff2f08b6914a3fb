"""Renders docs/configuration.md from the schema, so the reference never drifts from the code.

``python -m appliance.config_doc > docs/configuration.md``; a test checks the file is current.
"""

from __future__ import annotations

import sys
from typing import Any

from .config import field_specs, layer_specs
from .settings import SECTIONS

HEADER = """# Configuration

One TOML file: `--config PATH`, default `/etc/edge-appliance/config.toml` (`make run` uses
`var/config.toml`). A missing file means every default. Unknown keys and wrong values stop
start-up with a message naming each key and what it allows; `edge-appliance check-config`
runs the same checks. The admin page edits the same file; saves are atomic. Keys marked
*live* apply without a restart; *secret* keys are left out of exports unless asked.

This page is generated from `appliance/settings.py` by `python -m appliance.config_doc`.
"""


TABLE_HEAD = (
    "| key | on the admin page | type | default | allowed | what it does |\n" + "|---" * 6 + "|"
)


def _allowed(spec: dict[str, Any]) -> str:
    if "choices" in spec:
        return ", ".join(f"`{c}`" for c in spec["choices"])
    if "min" in spec and "max" in spec:
        return f"{spec['min']} to {spec['max']}"
    if "item_pattern" in spec:
        return f"each {spec['rule']}"
    return str(spec.get("rule", ""))


def _default(spec: dict[str, Any]) -> str:
    value = spec["default"]
    if value is None:
        return "see below" if spec["type"] == "list[table]" else "`[]`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{value}`"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render() -> str:
    """The whole Markdown page."""
    out = [HEADER]
    section = ""
    for spec in field_specs():
        if spec["section"] != section:
            section = spec["section"]
            title, about = SECTIONS[section]
            out.append(f"\n## [{section}]: {title}\n\n{about}\n\n{TABLE_HEAD}")
        flags = [f for f in ("live", "secret") if spec.get(f)]
        notes = spec["help"] + (f" ({', '.join(flags)})" if flags else "")
        name = spec["key"].split(".", 1)[1]
        cells = [f"`{name}`", spec["label"], spec["type"], _default(spec), _allowed(spec), notes]
        out.append(_row(cells))
    out.append(LAYERS.format(table=_layers()))
    return "\n".join(out) + "\n"


def _layers() -> str:
    rows = [TABLE_HEAD]
    for spec in layer_specs():
        name = spec["key"].rsplit(".", 1)[1]
        cells = [f"`{name}`", spec["label"], spec["type"], _default(spec), _allowed(spec)]
        rows.append(_row([*cells, spec["help"]]))
    return "\n".join(rows)


LAYERS = """
### `[[camera.layers]]`

Each layer is one encoded size of the same picture, largest first, at most three. The default
is `high` 1280x720 at 2.5 Mbit/s and `low` 320x180 at 250 kbit/s. A layer no subscriber wants
is not encoded. On the admin page each layer's fields are labelled *Layer 1: ...*.

{table}

```toml
[[camera.layers]]
name = "high"
width = 1280
height = 720
bitrate = 2500000

[[camera.layers]]
name = "low"
width = 320
height = 180
bitrate = 250000
```"""

if __name__ == "__main__":
    sys.stdout.write(render())
