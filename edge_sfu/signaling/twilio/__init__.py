"""A signaling endpoint for the official twilio-video.js SDK, on the unit's rooms and SFU.

An app written for Twilio Video joins rooms on the unit by changing only its connect
options (``wsServer`` pointing at ``/twilio/signaling``, ``insights: false`` or
``wsServerInsights`` pointing at ``/twilio/insights``). ``docs/twilio-migration.md``
describes what works and what does not.
"""

from .routes import TWILIO, setup
from .session import TwilioService, TwilioSession

__all__ = ["TWILIO", "TwilioService", "TwilioSession", "setup"]
