"""A unit in its own process, so a test can kill it with SIGKILL (a real crash).

Usage: python -m tests.integration.control.unit_process DATA_DIR IDENTITY ROOM
Serves the SFU app on an ephemeral loopback port, connects IDENTITY to ROOM, prints the
port on one line, and runs until killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiohttp import web

from edge_sfu.context import SfuContext
from edge_sfu.identity import load_or_create_identity
from edge_sfu.keys import KeyStore
from edge_sfu.server import create_sfu_app


async def main(data_dir: Path, identity: str, room: str) -> None:
    unit = load_or_create_identity(data_dir)
    context = SfuContext.open(data_dir, unit, KeyStore(data_dir, builtin=unit.signing_key))
    runner = web.AppRunner(create_sfu_app(context))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    await context.rooms.connect(identity, room)
    port = runner.addresses[0][1]
    print(port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
