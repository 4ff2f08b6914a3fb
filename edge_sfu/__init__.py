"""The unit's video-room server: rooms, access tokens, REST API, signaling and selective forwarding.

Shaped after Twilio Video so that a backend written for it can point at a unit. Knows aiortc
and aiohttp, never devices: local media arrives as encoded frames.
"""
