"""The former path of ``edge_sfu.media.seam``, for ``edge_sfu.client`` until it imports that.

Nothing else may import this module; it goes once the client's import is updated.
"""

from __future__ import annotations

from edge_sfu.media.seam import harden_ice_input, take_keyframe_request

__all__ = ["harden_ice_input", "take_keyframe_request"]
