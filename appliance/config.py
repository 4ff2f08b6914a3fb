"""Reading, validating and writing the TOML configuration file.

Validation walks the dataclass schema of ``appliance.settings``; every problem is reported
with its dotted key and what is allowed, and an unknown key is an error (a typo must not be
silently ignored on a unit nobody watches). Writes are atomic, so the console and the admin
page can edit the same file without ever leaving a broken one.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

import tomli_w

from edge_common.atomic import atomic_write

from .settings import SECTIONS, LayerSection, Settings

DEFAULT_CONFIG = Path("/etc/edge-appliance/config.toml")
DEFAULT_DATA_DIR = Path("/var/lib/edge-appliance")
#: Environment variables naming the unit's files when ``--config``/``--data-dir`` are absent.
CONFIG_ENV = "EDGE_APPLIANCE_CONFIG"
DATA_DIR_ENV = "EDGE_APPLIANCE_DATA_DIR"
MAX_CONFIG_BYTES = 256 * 1024


class ConfigError(ValueError):
    """The configuration is wrong; ``problems`` maps dotted keys to messages."""

    def __init__(self, source: str, problems: dict[str, str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {k}: {v}" for k, v in problems.items())
        super().__init__(f"{source}: invalid configuration\n{lines}")


def load_config(path: Path) -> Settings:
    """Read ``path``; a missing file means all defaults. Raises ``ConfigError``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise ConfigError(str(path), {"(file)": f"cannot read: {exc.strerror}"}) from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), {"(file)": f"larger than {MAX_CONFIG_BYTES} bytes"})
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), {"(file)": f"not valid TOML: {exc}"}) from exc
    return parse_settings(data, source=str(path))


def parse_settings(data: dict[str, Any], *, source: str = "config") -> Settings:
    """Build ``Settings`` from a nested dict, or raise ``ConfigError`` naming every problem."""
    problems: dict[str, str] = {}
    settings = _build(Settings, data, "", problems)
    if not problems:
        _cross_checks(typing.cast(Settings, settings), problems)
    if problems:
        raise ConfigError(source, problems)
    return typing.cast(Settings, settings)


def validate_settings(data: dict[str, Any]) -> dict[str, str]:
    """Problems in ``data`` as {dotted key: message}; empty when valid."""
    try:
        parse_settings(data)
    except ConfigError as exc:
        return exc.problems
    return {}


def settings_to_dict(settings: Settings, *, include_secrets: bool = True) -> dict[str, Any]:
    """The settings as a nested dict (secrets blanked unless asked)."""
    out: dict[str, Any] = dataclasses.asdict(settings)
    if not include_secrets:
        for section, name in secret_keys():
            out[section][name] = ""
    return out


def save_config(path: Path, settings: Settings) -> None:
    """Write ``settings`` to ``path`` atomically (mode 0640: it may hold secrets)."""
    text = "# edge-appliance configuration (written by edge-appliance)\n"
    text += tomli_w.dumps(settings_to_dict(settings))
    atomic_write(path, text, mode=0o640)


def secret_keys() -> list[tuple[str, str]]:
    """(section, key) of every secret field."""
    out = []
    for section in fields(Settings):
        for f in fields(_section_type(section)):
            if f.metadata.get("secret"):
                out.append((section.name, f.name))
    return out


def _section_type(f: dataclasses.Field[Any]) -> type:
    hints = typing.get_type_hints(Settings)
    return typing.cast(type, hints[f.name])


def _build(cls: type, data: Any, prefix: str, problems: dict[str, str]) -> Any:
    if not isinstance(data, dict):
        problems[prefix or "(file)"] = f"must be a table, got {_kind(data)}"
        return None
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            allowed = ", ".join(sorted(known))
            problems[_join(prefix, key)] = f"unknown key, not a setting (allowed: {allowed})"
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name not in data:
            continue
        values[name] = _value(hints[name], f.metadata, data[name], _join(prefix, name), problems)
    try:
        return cls(**values)
    except TypeError:
        return None


def _value(
    tp: Any, md: typing.Mapping[str, Any], value: Any, key: str, problems: dict[str, str]
) -> Any:
    origin = typing.get_origin(tp)
    if is_dataclass(tp):
        return _build(typing.cast(type, tp), value, key, problems)
    if origin is list:
        return _list(typing.get_args(tp)[0], md, value, key, problems)
    message = _scalar_problem(tp, md, value)
    if message:
        problems[key] = f"{message}, got {value!r}" if _short(value) else message
        return None
    return float(value) if tp is float else value


def _list(
    item_tp: Any, md: typing.Mapping[str, Any], value: Any, key: str, problems: dict[str, str]
) -> Any:
    if not isinstance(value, list):
        problems[key] = f"must be a list, got {_kind(value)}"
        return None
    lo, hi = md.get("min_items", 0), md.get("max_items", 32)
    if not lo <= len(value) <= hi:
        problems[key] = f"must have {lo} to {hi} items, got {len(value)}"
        return None
    item_md = {"pattern": md["item_pattern"], "rule": md["rule"]} if "item_pattern" in md else {}
    return [_value(item_tp, item_md, v, f"{key}[{i}]", problems) for i, v in enumerate(value)]


def _scalar_problem(tp: Any, md: typing.Mapping[str, Any], value: Any) -> str | None:
    if tp is bool and not isinstance(value, bool):
        return "must be true or false"
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be an integer" + _range(md)
    if tp is float and (isinstance(value, bool) or not isinstance(value, int | float)):
        return "must be a number" + _range(md)
    if tp is str and not isinstance(value, str):
        return "must be a string"
    if "choices" in md and value not in md["choices"]:
        return "must be one of " + ", ".join(repr(c) for c in md["choices"])
    if tp in (int, float) and not md.get("min", value) <= value <= md.get("max", value):
        return f"must be {'a number' if tp is float else 'an integer'}{_range(md)}"
    if tp is str:
        return _string_problem(md, value)
    return None


def _string_problem(md: typing.Mapping[str, Any], value: str) -> str | None:
    if len(value) > md.get("max_len", 4096):
        return f"must be at most {md.get('max_len', 4096)} characters"
    if "pattern" in md and not re.fullmatch(md["pattern"], value):
        return f"must match: {md['rule']}"
    if any(ord(c) < 32 for c in value):
        return "must not contain control characters"
    return None


def _cross_checks(s: Settings, problems: dict[str, str]) -> None:
    m = s.media
    if (m.udp_port_min == 0) != (m.udp_port_max == 0) or m.udp_port_min > m.udp_port_max:
        problems["media.udp_port_max"] = (
            "udp_port_min and udp_port_max: both 0 (any port), or the lowest at most the highest"
        )
    pins = {
        "join_button": s.gpio.join_button,
        "mute_button": s.gpio.mute_button,
        "status_led": s.gpio.status_led,
        "mute_led": s.gpio.mute_led,
    }
    seen: dict[int, str] = {}
    for name, pin in pins.items():
        if pin in seen:
            problems[f"gpio.{name}"] = f"pin {pin} is already used by gpio.{seen[pin]}"
        seen[pin] = name
    names = [layer.name for layer in s.camera.layers]
    if len(set(names)) != len(names):
        problems["camera.layers"] = "layer names must be unique"
    areas = [layer.width * layer.height for layer in s.camera.layers]
    if areas != sorted(areas, reverse=True):
        problems["camera.layers"] = "layers must be listed largest first"
    k = s.kiosk
    if k.remote_url and not (k.remote_token or (k.remote_api_key_sid and k.remote_api_key_secret)):
        problems["kiosk.remote_url"] = (
            "another unit needs remote_token, or remote_api_key_sid and remote_api_key_secret"
        )
    _field_checks(s, problems)


def _field_checks(s: Settings, problems: dict[str, str]) -> None:
    f = s.field
    if f.retry_max < f.retry_initial:
        problems["field.retry_max"] = (
            f"must be at least field.retry_initial ({f.retry_initial:g} s), got {f.retry_max:g}"
        )
    if s.unit.role != "field":
        return
    if f.transport == "whip" and not f.whip_url:
        problems["field.whip_url"] = "a field unit with transport 'whip' needs the WHIP endpoint"
    if f.transport == "unit" and not s.kiosk.remote_url:
        problems["kiosk.remote_url"] = (
            "a field unit with transport 'unit' streams to the hub at kiosk.remote_url: set it"
        )


def _range(md: typing.Mapping[str, Any]) -> str:
    if "min" in md and "max" in md:
        return f" from {md['min']} to {md['max']}"
    return ""


def _kind(value: Any) -> str:
    return type(value).__name__


def _short(value: Any) -> bool:
    return len(repr(value)) <= 80


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def field_specs() -> list[dict[str, Any]]:
    """A description of every field for the admin page's form and the docs (schema-driven).

    Each has ``key``, ``section``, ``section_title``, ``type``, ``default`` and the field's
    metadata (``label``, ``help``, constraints).
    """
    specs: list[dict[str, Any]] = []
    for section in fields(Settings):
        specs += _table_specs(_section_type(section), section.name)
    return specs


def layer_specs() -> list[dict[str, Any]]:
    """The fields of one ``[[camera.layers]]`` entry, described as :func:`field_specs` does."""
    return _table_specs(LayerSection, "camera.layers")


def _table_specs(cls: type, section: str) -> list[dict[str, Any]]:
    hints = typing.get_type_hints(cls)
    top = section.split(".", 1)[0]
    out = []
    for f in fields(cls):
        out.append(
            {
                "key": f"{section}.{f.name}",
                "section": section,
                "section_title": SECTIONS[top][0],
                "type": _type_name(hints[f.name]),
                "default": f.default if f.default is not MISSING else None,
                **dict(f.metadata),
            }
        )
    return out


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is list:
        item = typing.get_args(tp)[0]
        return "list[table]" if is_dataclass(item) else "list[str]"
    if isinstance(tp, type):
        return tp.__name__
    if isinstance(tp, types.UnionType):
        return "union"
    return str(tp)
