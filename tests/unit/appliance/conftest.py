"""Appliance unit tests configure logging as the daemon does: the root logger is put back
after each, so a level set here (INFO) does not make later tests' libraries log, and their
log records keep no objects alive."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
