"""The settings form, generated from the backend's field schema.

Parsing is strict and total: every field is checked for type, range, length and characters,
and a submission with any error saves nothing. The same checks run on an imported config.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from .backend import FieldSpec
from .errors import InvalidInput
from .pages.html import attr, e
from .pages.layout import form_field

MISSING = object()
_URL_SCHEMES = {"http", "https", "ws", "wss", "stun", "stuns", "turn", "turns"}
# Markup and control characters have no place in config values; refusing them up front
# means nothing saved here can turn into markup on a page or a log line later.
_FORBIDDEN = re.compile(r"[<>\x00-\x08\x0b-\x1f\x7f]")
_MAX_RAW = 4096


def get_path(data: Any, path: str) -> Any:
    """The value at a dotted path (list items by index), or ``MISSING``."""
    node = data
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def pop_path(data: dict[str, Any], path: str) -> None:
    """Remove the table entry at a dotted path, if there is one."""
    parts = path.split(".")
    parent = get_path(data, ".".join(parts[:-1])) if len(parts) > 1 else data
    if isinstance(parent, dict):
        parent.pop(parts[-1], None)


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a value at a dotted path, creating tables (and list slots) on the way."""
    parts = path.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt_is_index = not last and parts[i + 1].isdigit()
        if isinstance(node, list):
            idx = int(part)
            while len(node) <= idx:
                node.append([] if nxt_is_index else {})
            if last:
                node[idx] = value
            else:
                node = node[idx]
        else:
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict | list):
                    node[part] = [] if nxt_is_index else {}
                node = node[part]


def _check_text(spec: FieldSpec, text: str) -> str:
    if len(text) > spec.max_length:
        raise InvalidInput(f"Use at most {spec.max_length} characters.")
    if _FORBIDDEN.search(text):
        raise InvalidInput("Remove the < > characters and control characters.")
    if spec.pattern and text and not re.fullmatch(spec.pattern, text):
        raise InvalidInput(spec.pattern_help or "This value has the wrong format.")
    return text


def _check_number(spec: FieldSpec, value: float) -> None:
    if spec.minimum is not None and value < spec.minimum:
        raise InvalidInput(f"Use a value of at least {spec.minimum:g}.")
    if spec.maximum is not None and value > spec.maximum:
        raise InvalidInput(f"Use a value of at most {spec.maximum:g}.")


def coerce(spec: FieldSpec, raw: Any, *, from_form: bool) -> Any:
    """Turn a submitted value into the config value for ``spec`` or raise :class:`InvalidInput`.

    ``from_form`` values are strings (as browsers send them); imported values must already
    have the right TOML type (a string where a number belongs is refused, not guessed at).
    """
    if from_form and not isinstance(raw, str):
        raise InvalidInput("Send this field as text.")
    if isinstance(raw, str) and len(raw) > _MAX_RAW:
        raise InvalidInput("This value is far too long.")
    kind = spec.kind
    if kind == "bool":
        if from_form:
            if raw not in ("on", "true", "1", "", "off", "false", "0"):
                raise InvalidInput("Tick or untick this box.")
            return raw in ("on", "true", "1")
        if not isinstance(raw, bool):
            raise InvalidInput("Use true or false.")
        return raw
    if kind == "int":
        if from_form:
            text = raw.strip()
            if not re.fullmatch(r"[+-]?\d{1,18}", text):
                raise InvalidInput("Enter a whole number.")
            value: Any = int(text)
        elif isinstance(raw, bool) or not isinstance(raw, int):
            raise InvalidInput("Use a whole number.")
        else:
            value = raw
        _check_number(spec, value)
        return value
    if kind == "float":
        if from_form:
            try:
                value = float(raw.strip()) if len(raw) <= 32 else math.nan
            except ValueError:
                raise InvalidInput("Enter a number.") from None
        elif isinstance(raw, bool) or not isinstance(raw, int | float):
            raise InvalidInput("Use a number.")
        else:
            value = float(raw)
        if not math.isfinite(value):
            raise InvalidInput("Enter a finite number.")
        _check_number(spec, value)
        return value
    if kind == "list":
        if from_form:
            items = [line.strip() for line in raw.splitlines() if line.strip()]
        elif isinstance(raw, list) and all(isinstance(i, str) for i in raw):
            items = list(raw)
        else:
            raise InvalidInput("Use a list of text values.")
        if len(items) > spec.max_items:
            raise InvalidInput(f"Use at most {spec.max_items} entries.")
        for item in items:
            _check_text(spec, item)
        if spec.required and not items:
            raise InvalidInput("Enter at least one entry.")
        return items
    if not isinstance(raw, str):
        raise InvalidInput("Use text.")
    text = _check_text(spec, raw.strip())
    if spec.required and not text:
        raise InvalidInput("This field is required.")
    if kind == "choice" and text not in spec.choices:
        raise InvalidInput("Choose one of: " + ", ".join(spec.choices) + ".")
    if kind == "url" and text:
        parts = urlsplit(text)
        if parts.scheme not in _URL_SCHEMES or not (parts.netloc or parts.path):
            raise InvalidInput("Enter a full URL, such as https://unit.local/.")
    return text


def parse_form(
    specs: Sequence[FieldSpec], form: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply a posted form onto a copy of ``current``; return it with per-field errors.

    A secret field left empty keeps its stored value. Form keys that are not in the schema
    are ignored (they cannot reach the config).
    """
    result = copy.deepcopy(dict(current))
    errors: dict[str, str] = {}
    for spec in specs:
        raw = form.get(spec.path, MISSING)
        if raw is MISSING:
            if spec.kind == "bool":
                raw = ""  # an unticked checkbox is not sent at all
            else:
                errors[spec.path] = "This field is missing from the form."
                continue
        if spec.secret and raw == "":
            continue
        try:
            set_path(result, spec.path, coerce(spec, raw, from_form=True))
        except InvalidInput as exc:
            errors[spec.path] = str(exc)
    return result, errors


def _scan_strings(node: Any, path: str, errors: dict[str, str]) -> None:
    if isinstance(node, Mapping):
        for k, v in node.items():
            _scan_strings(v, f"{path}.{k}" if path else str(k), errors)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _scan_strings(v, f"{path}.{i}", errors)
    elif isinstance(node, str) and _FORBIDDEN.search(node):
        errors.setdefault(path, "Remove the < > characters and control characters.")


def check_settings(specs: Sequence[FieldSpec], data: Mapping[str, Any]) -> dict[str, str]:
    """Type-check a whole settings dict (an import) against the schema.

    Keys the schema does not describe pass through to the backend (a config may hold more
    than the page edits), but no string anywhere may carry markup or control characters.
    """
    errors: dict[str, str] = {}
    _scan_strings(data, "", errors)
    for spec in specs:
        value = get_path(data, spec.path)
        if value is MISSING:
            if spec.required and not spec.secret:
                errors[spec.path] = "This setting is missing."
            continue
        try:
            coerce(spec, value, from_form=False)
        except InvalidInput as exc:
            errors[spec.path] = str(exc)
    return errors


def spec_for(specs: Sequence[FieldSpec], path: str) -> FieldSpec | None:
    """The field a path belongs to (an item of a list field to its list), or ``None``."""
    return next((s for s in specs if path == s.path or path.startswith(s.path + ".")), None)


def with_saved_values(
    specs: Sequence[FieldSpec],
    data: Mapping[str, Any],
    saved: Mapping[str, Any],
    paths: Iterable[str],
) -> dict[str, Any]:
    """A copy of ``data`` whose settings at ``paths`` (refused ones) hold their saved value.

    The backend's own checks expect values of the right type; with the refused ones put back
    they can still judge everything else in the same pass.
    """
    out = copy.deepcopy(dict(data))
    for path in paths:
        spec = spec_for(specs, path)
        if spec is None:
            continue
        value = get_path(saved, spec.path)
        if value is not MISSING:
            set_path(out, spec.path, copy.deepcopy(value))
            continue
        pop_path(out, spec.path)
    return out


def strip_secrets(specs: Sequence[FieldSpec], data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` without the schema's secret fields."""
    out = copy.deepcopy(dict(data))
    for spec in specs:
        if not spec.secret:
            continue
        pop_path(out, spec.path)
    return out


def field_id(path: str) -> str:
    """An HTML id for a field path."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", path)


def section_id(title: str) -> str:
    """An HTML id for a section of the form (the table of contents links to it)."""
    return "s-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "general")


def render_toc(specs: Sequence[FieldSpec], errors: Mapping[str, str]) -> str:
    """The table of contents of the form's sections, counting the problems in each."""
    counts: dict[str, int] = {}
    for spec in specs:
        counts.setdefault(spec.section, 0)
        counts[spec.section] += spec.path in errors
    items = []
    for title, bad in counts.items():
        mark = f' <span class="toc-bad">({bad} to fix)</span>' if bad else ""
        items.append(f'<li><a href="#{attr(section_id(title))}">{e(title)}</a>{mark}</li>')
    return f'<nav class="toc" aria-label="Sections"><ul>{"".join(items)}</ul></nav>'


def _display(spec: FieldSpec, value: Any) -> str:
    if value is MISSING or value is None or spec.secret:
        return ""
    if spec.kind == "list" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def _control(spec: FieldSpec, fid: str, value: Any, described: str) -> str:
    name = attr(spec.path)
    common = f'id="{fid}" name="{name}" aria-describedby="{described}"'
    if spec.kind == "bool":
        checked = " checked" if value is True or value in ("on", "true", "1") else ""
        return f'<input type="checkbox" {common}{checked}>'
    if spec.kind == "choice":
        opts = "".join(
            f'<option value="{attr(c)}"{" selected" if c == value else ""}>{e(c)}</option>'
            for c in spec.choices
        )
        return f"<select {common}>{opts}</select>"
    text = _display(spec, value) if not isinstance(value, str) or spec.kind == "list" else value
    if spec.secret:
        text = ""
    if spec.kind == "list":
        return f'<textarea {common} rows="3">{e(text)}</textarea>'
    kind = {"int": "number", "float": "number", "url": "url"}.get(spec.kind, "text")
    if spec.secret:
        kind = "password"
    extra = ""
    if spec.kind in ("int", "float"):
        extra += ' step="any"' if spec.kind == "float" else ""
        if spec.minimum is not None:
            extra += f' min="{spec.minimum:g}"'
        if spec.maximum is not None:
            extra += f' max="{spec.maximum:g}"'
    else:
        extra += f' maxlength="{spec.max_length}"'
    if spec.secret:
        extra += ' placeholder="unchanged" autocomplete="new-password"'
    return f'<input type="{kind}" {common} value="{attr(text)}"{extra}>'


def render_form(
    specs: Sequence[FieldSpec],
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    submitted: Mapping[str, Any] | None = None,
) -> str:
    """The fieldsets of the settings form (without the ``<form>`` element itself).

    After a refused submission ``submitted`` holds what the admin typed, so nothing is lost.
    """
    sections: dict[str, list[str]] = {}
    for spec in specs:
        fid = field_id(spec.path)
        if submitted is not None and (spec.path in submitted or spec.kind == "bool"):
            # An unticked checkbox is absent from a submission: show it unticked.
            value: Any = submitted.get(spec.path, "")
            if not isinstance(value, str):
                value = ""
        else:
            value = get_path(values, spec.path)
            if spec.kind != "choice" and spec.kind != "bool":
                value = _display(spec, value)
        err = errors.get(spec.path, "")
        help_parts = [spec.help] if spec.help else []
        if not spec.live:
            help_parts.append("Takes effect after a restart.")
        if spec.secret:
            help_parts.append("Leave empty to keep the stored value.")
        described = f"{fid}-help {fid}-err"
        control = _control(spec, fid, value, described)
        row = form_field(fid, spec.label, control, err, " ".join(help_parts))
        sections.setdefault(spec.section, []).append(row)
    intros = {spec.section: spec.section_help for spec in specs if spec.section_help}
    out = []
    for name, rows in sections.items():
        intro = f'<p class="help">{e(intros[name])}</p>' if name in intros else ""
        out.append(
            f'<fieldset id="{attr(section_id(name))}"><legend>{e(name)}</legend>'
            f"{intro}{''.join(rows)}</fieldset>"
        )
    return "".join(out)
