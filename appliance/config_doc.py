"""Renders docs/configuration.md from the schema, so the reference never drifts from the code.

``python -m appliance.config_doc > docs/configuration.md``; a test checks the file is current.
"""

from __future__ import annotations

import sys
from typing import Any

from .config import field_specs

HEADER = """# Configuration

One TOML file: `--config PATH`, default `/etc/edge-appliance/config.toml` (`make run` uses
`var/config.toml`). A missing file means every default. Unknown keys and wrong values stop
start-up with a message naming each key and what it allows; `edge-appliance check-config`
runs the same checks. The admin page edits the same file; saves are atomic. Keys marked
*live* apply without a restart; *secret* keys are left out of exports unless asked.

This page is generated from `appliance/settings.py` by `python -m appliance.config_doc`.
"""


TABLE_HEAD = "| key | type | default | allowed | notes |\n|---|---|---|---|---|"


def _allowed(spec: dict[str, Any]) -> str:
    if "choices" in spec:
        return ", ".join(f"`{c}`" for c in spec["choices"])
    if "min" in spec and "max" in spec:
        return f"{spec['min']} to {spec['max']}"
    if "pattern" in spec:
        return f"matches `{spec['pattern']}`"
    if "item_pattern" in spec:
        return f"items match `{spec['item_pattern']}`"
    return ""


def _default(spec: dict[str, Any]) -> str:
    value = spec["default"]
    if value is None:
        return "see below" if spec["type"] == "list[table]" else "`[]`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{value}`"


def render() -> str:
    """The whole Markdown page."""
    out = [HEADER]
    section = ""
    for spec in field_specs():
        if spec["section"] != section:
            section = spec["section"]
            out.append(f"\n## [{section}]\n\n{TABLE_HEAD}")
        flags = [f for f in ("live", "secret") if spec.get(f)]
        notes = spec["help"] + (f" ({', '.join(flags)})" if flags else "")
        name = spec["key"].split(".", 1)[1]
        cells = [f"`{name}`", spec["type"], _default(spec), _allowed(spec), notes]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out.append(LAYERS)
    return "\n".join(out) + "\n"


LAYERS = """
### `[[camera.layers]]`

Each layer is one encoded size of the same picture, largest first, at most three: `name`
(`[a-z0-9_-]{1,16}`), `width` (16 to 1920), `height` (16 to 1080), `bitrate` (bits/s, 50000 to
10000000). The default is `high` 1280x720 at 2.5 Mbit/s and `low` 320x180 at 250 kbit/s. A
layer no subscriber wants is not encoded.

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
