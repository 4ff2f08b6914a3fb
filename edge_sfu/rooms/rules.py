"""Subscribe Rules and Recording Rules: Twilio's grammar, validation and evaluation.

A rule set is a JSON list of 1 to 20 rules. A rule is an object with ``type``
(``include`` or ``exclude``) and either ``"all": true`` alone, or one or more filters
(``publisher`` identity, ``track`` name, ``kind``) that must all match. Subscribe rules may
also carry ``priority`` (``low``, ``standard``, ``high``); recording rules take only
``audio``/``video`` kinds.

Evaluation: rules apply in order, and the last rule that matches a track decides; a track
no rule matches is excluded. So ``[{"type":"include","all":true},
{"type":"exclude","kind":"video"}]`` means audio (and data) only, and
``[{"type":"exclude","all":true},{"type":"include","publisher":"alice"}]`` means alice only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidParameter
from .model import TRACK_KINDS

MAX_RULES = 20
MAX_FILTER_LENGTH = 256
INVALID_SUBSCRIBE_RULES = 53215
INVALID_RECORDING_RULES = 53120
PRIORITIES = frozenset({"low", "standard", "high"})

Rules = list[dict[str, object]]


def parse_subscribe_rules(raw: str) -> Rules:
    """Validate the ``Rules`` form field of a Subscribe Rules update."""
    return _parse(raw, code=INVALID_SUBSCRIBE_RULES, kinds=TRACK_KINDS, priority=True)


def parse_recording_rules(raw: str) -> Rules:
    """Validate the ``Rules`` form field of a Recording Rules update."""
    return _parse(raw, code=INVALID_RECORDING_RULES, kinds=("audio", "video"), priority=False)


def rules_allow(rules: Sequence[dict[str, object]], publisher_identity: str, track: Any) -> bool:
    """Whether ``rules`` select ``track`` of ``publisher_identity`` (last match wins).

    ``track`` is anything with ``name`` and ``kind`` attributes (a ``PublishedTrack``).
    """
    allowed = False
    for rule in rules:
        if _matches(rule, publisher_identity, track.name, track.kind):
            allowed = rule["type"] == "include"
    return allowed


def _matches(rule: dict[str, object], publisher: str, name: str, kind: str) -> bool:
    if rule.get("all") is True:
        return True
    checks = (("publisher", publisher), ("track", name), ("kind", kind))
    return all(rule[key] == value for key, value in checks if key in rule)


def _parse(raw: str, *, code: int, kinds: Sequence[str], priority: bool) -> Rules:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidParameter("Rules must be a JSON array of rules", code=code) from exc
    if isinstance(value, dict) and set(value) == {"rules"}:
        value = value["rules"]  # Twilio's helper libraries send {"rules": [...]}
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_RULES:
        raise InvalidParameter(f"Rules must be a JSON array of 1 to {MAX_RULES} rules", code=code)
    return [_rule(item, code=code, kinds=kinds, priority=priority) for item in value]


def _rule(item: object, *, code: int, kinds: Sequence[str], priority: bool) -> dict[str, object]:
    if not isinstance(item, dict):
        raise InvalidParameter("each rule must be a JSON object", code=code)
    allowed = {"type", "all", "publisher", "track", "kind"} | ({"priority"} if priority else set())
    unknown = set(item) - allowed
    if unknown:
        raise InvalidParameter(f"unknown rule field(s): {', '.join(sorted(unknown))}", code=code)
    if item.get("type") not in ("include", "exclude"):
        raise InvalidParameter("rule type must be 'include' or 'exclude'", code=code)
    filters = {k: item[k] for k in ("publisher", "track", "kind") if k in item}
    if "all" in item:
        if item["all"] is not True or filters:
            raise InvalidParameter("'all' must be true and stand alone in its rule", code=code)
    elif not filters:
        raise InvalidParameter("a rule needs 'all' or a publisher, track or kind", code=code)
    for key, value in filters.items():
        if not isinstance(value, str) or not value or len(value) > MAX_FILTER_LENGTH:
            raise InvalidParameter(f"rule {key} must be a non-empty string", code=code)
    if "kind" in filters and filters["kind"] not in kinds:
        raise InvalidParameter(f"rule kind must be one of {', '.join(kinds)}", code=code)
    if "priority" in item and item["priority"] not in PRIORITIES:
        raise InvalidParameter("rule priority must be low, standard or high", code=code)
    return dict(item)
