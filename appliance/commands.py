"""Subcommands that talk to the devices, the admin state or the running daemon."""

from __future__ import annotations

import argparse


def add_device_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``doctor``, ``press``, ``claim-code`` and ``admin``."""
