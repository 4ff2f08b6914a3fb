"""Hand-written stand-in for libcamera (see ../README.md). Not the real library."""

from __future__ import annotations

from typing import Any

IS_STANDIN = True


class _Placeholder(type):
    """A class whose unknown attributes are further placeholder classes (for import-time use)."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        sub = _Placeholder(name, (_Inert,), {})
        setattr(cls, name, sub)
        return sub


class _Inert(metaclass=_Placeholder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


class controls(metaclass=_Placeholder):
    """``libcamera.controls``: only ``SensorTimestamp`` matters, as a metadata key."""

    SensorTimestamp = "SensorTimestamp"


_made: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    if name not in _made:
        _made[name] = _Placeholder(name, (_Inert,), {})
    return _made[name]
