"""ICE configuration: nothing contacted that was not configured."""

from __future__ import annotations

from edge_sfu.media import IceServer, MediaSettings, Router


def test_default_has_an_explicit_empty_server_list() -> None:
    config = MediaSettings().rtc_configuration()
    # None would make aiortc add a public STUN server
    assert config.iceServers == []


def test_configured_servers_are_passed_through() -> None:
    settings = MediaSettings(
        ice_servers=(
            IceServer(("stun:stun.example.net:3478",)),
            IceServer(("turn:turn.example.net:3478?transport=udp",), "user", "secret"),
        )
    )
    servers = settings.rtc_configuration().iceServers
    assert servers is not None
    assert [s.urls for s in servers] == [
        ["stun:stun.example.net:3478"],
        ["turn:turn.example.net:3478?transport=udp"],
    ]
    assert servers[1].username == "user" and servers[1].credential == "secret"


async def test_a_transport_gathers_host_candidates_only() -> None:
    router = Router("RM")
    transport = router.create_transport("PA")
    try:
        transport.pc.addTransceiver("audio", direction="sendonly")
        sdp = await transport.create_offer()
        connection = transport.pc.getTransceivers()[0].receiver.transport.transport._connection
        assert connection.stun_server is None and connection.turn_server is None
        candidates = [line for line in sdp.splitlines() if line.startswith("a=candidate:")]
        assert candidates and all(" typ host" in c for c in candidates)
    finally:
        await router.close()


def test_port_range_is_validated() -> None:
    import pytest

    assert MediaSettings(udp_port_range=(40000, 40099)).udp_port_range == (40000, 40099)
    for bad in ((10, 20), (40000, 39999), (60000, 70000)):
        with pytest.raises(ValueError):
            MediaSettings(udp_port_range=bad)
