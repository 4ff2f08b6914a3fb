"""WHIP with Twilio-format tokens signed with an API key of the unit (docs/whip-whep.md).

The key is made and revoked with ``edge-appliance keys`` (the unit's key store, as the admin
page's keys screen uses it); the token is minted by twilio-python, as a customer's backend
would mint it: the key's SID as ``iss``, signed with its secret.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from tests.support.daemon import write_config
from tests.support.media import PatternVideoTrack
from tests.support.sfu import RunningSfu
from tests.support.waiting import wait_for

from .aiortc_whip import AiortcWhip
from .test_whip_refusals import refused


def keys_command(data_dir: Path, *args: str) -> str:
    """``edge-appliance keys ARGS`` on the unit in ``data_dir``; its output."""
    config = data_dir / "config.toml"
    if not config.exists():
        write_config(config, {})
    paths = ("--config", str(config), "--data-dir", str(data_dir))
    done = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "keys", *args, *paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def twilio_token(account_sid: str, key_sid: str, secret: str, identity: str) -> str:
    token = AccessToken(account_sid, key_sid, secret, identity=identity, ttl=600)
    token.add_grant(VideoGrant(room="room1"))
    return str(token.to_jwt())


async def test_tokens_of_an_api_key_publish_until_it_is_revoked(
    sfu: RunningSfu, tmp_path: Path, offer: str
) -> None:
    key = json.loads(keys_command(tmp_path, "create", "--name", "encoder", "--json"))
    account = sfu.identity.account_sid
    assert key["account_sid"] == account and key["sid"].startswith("SK")
    token = twilio_token(account, key["sid"], key["secret"], "encoder")
    whip = AiortcWhip()
    try:
        result = await whip.publish(sfu.base, "room1", token, PatternVideoTrack(160, 120, 15))
        assert result.status == 201, result.body
        room = sfu.context.rooms.live_room_by_name("room1")
        assert room is not None
        await wait_for(
            lambda: (p := room.by_identity("encoder")) is not None and bool(p.published),
            timeout=10,
            what="the key's token publishing",
        )
        assert await whip.delete() == 200
    finally:
        await whip.close()
    await wait_for(lambda: room.by_identity("encoder") is None, timeout=5)

    # The key's SID with a secret that is not its own: the signature fails.
    forged = twilio_token(account, key["sid"], "x" * 32, "encoder")
    await refused(sfu, "/whip/room1", forged, offer, 401, 20107)
    # The key revoked: its tokens, valid a moment ago, are refused (the running unit sees
    # the key store change).
    keys_command(tmp_path, "revoke", key["sid"])
    await refused(sfu, "/whip/room1", token, offer, 401, 20103)
    await refused(sfu, "/whep/room1", token, offer, 401, 20103)
