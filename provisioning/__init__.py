"""The admin's local web page: claim, sign-in, settings, keys, TLS, status and mDNS discovery.

Knows aiohttp, not the SFU or the devices: the appliance hands it what it shows and applies
what it saves.
"""

from .app import setup
from .backend import Address, ApiKeyInfo, Backend, FieldSpec, SaveResult

__all__ = ["Address", "ApiKeyInfo", "Backend", "FieldSpec", "SaveResult", "setup"]
