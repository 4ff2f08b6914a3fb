"""What the WHIP/WHEP endpoints read in SDP text before aiortc sees it.

An offer's m-lines (kind, direction, codecs), to refuse an offer with no media the unit
forwards (406) without building a peer connection; and the ``application/trickle-ice-sdpfrag``
bodies of PATCH (RFC 8840): candidates, end-of-candidates, and the ICE credentials that
tell a trickle from an ICE restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: The codecs the forwarder carries, by kind (``edge_sfu.media``: Opus, VP8, H.264).
FORWARDED = {"audio": frozenset({"OPUS"}), "video": frozenset({"VP8", "H264"})}
_RTPMAP = re.compile(r"^a=rtpmap:\d+ ([A-Za-z0-9_.-]+)/", re.M)
_DIRECTION = re.compile(r"^a=(sendonly|recvonly|sendrecv|inactive)\s*$", re.M)
_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)\s*$", re.M)
_PWD = re.compile(r"^a=ice-pwd:(\S+)\s*$", re.M)
#: Lines a trickle fragment may hold (RFC 8840 section 4.4, RFC 9725 section 4.3.1).
_FRAGMENT_LINE = re.compile(
    r"^(a=ice-ufrag:\S+|a=ice-pwd:\S+|a=ice-options:[ -~]+|a=group:BUNDLE[ -~]*|"
    r"m=(audio|video|application) \d+ [ -~]+|a=mid:\S+|a=candidate:[ -~]+|"
    r"a=end-of-candidates|c=IN IP[46] \S+)$"
)
#: Candidates one fragment may carry (the transport caps the total it accepts).
MAX_FRAGMENT_LINES = 200


class FragmentError(ValueError):
    """A PATCH body that is not a trickle-ice-sdpfrag (RFC 8840)."""


@dataclass(frozen=True)
class MediaLine:
    """One audio or video m-line of an offer."""

    kind: str
    direction: str
    codecs: frozenset[str]

    @property
    def forwarded_codecs(self) -> frozenset[str]:
        """The codecs of this m-line that the unit forwards."""
        return self.codecs & FORWARDED.get(self.kind, frozenset())

    @property
    def sends(self) -> bool:
        """Whether the offerer sends on it (a publisher's line)."""
        return self.direction in ("sendonly", "sendrecv")

    @property
    def receives(self) -> bool:
        """Whether the offerer receives on it (a viewer's line)."""
        return self.direction in ("recvonly", "sendrecv")


@dataclass(frozen=True)
class Offer:
    """The parts of an offer the endpoints decide on."""

    media: tuple[MediaLine, ...]
    ufrag: str | None
    pwd: str | None


def _sections(sdp: str) -> tuple[str, list[str]]:
    text = sdp.replace("\r\n", "\n")
    head, *rest = text.split("\nm=")
    return head, rest


def parse_offer(sdp: str) -> Offer:
    """The audio/video m-lines and session ICE credentials of ``sdp`` (already checked by
    ``protocol.validate_sdp``). A direction missing in an m-line is the session's, else
    ``sendrecv`` (RFC 4566)."""
    head, sections = _sections(sdp)
    session_direction = _DIRECTION.search(head)
    default = session_direction.group(1) if session_direction else "sendrecv"
    lines: list[MediaLine] = []
    ufrag = _UFRAG.search(head)
    pwd = _PWD.search(head)
    for section in sections:
        kind = section.split(" ", 1)[0]
        if ufrag is None:
            ufrag = _UFRAG.search(section)
        if pwd is None:
            pwd = _PWD.search(section)
        if kind not in ("audio", "video"):
            continue
        direction = _DIRECTION.search(section)
        port = section.split(" ", 2)[1] if section.count(" ") >= 2 else "9"
        codecs = frozenset(m.group(1).upper() for m in _RTPMAP.finditer(section))
        lines.append(
            MediaLine(
                kind,
                "inactive" if port == "0" else (direction.group(1) if direction else default),
                codecs,
            )
        )
    return Offer(tuple(lines), ufrag.group(1) if ufrag else None, pwd.group(1) if pwd else None)


@dataclass
class Fragment:
    """A parsed trickle-ice-sdpfrag."""

    candidates: list[str] = field(default_factory=list)
    ufrag: str | None = None
    pwd: str | None = None
    end_of_candidates: bool = False


def parse_fragment(body: str) -> Fragment:
    """Parse a PATCH body; raises ``FragmentError`` for anything that is not one."""
    lines = [line for line in body.replace("\r\n", "\n").split("\n") if line]
    if not lines:
        raise FragmentError("empty SDP fragment")
    if len(lines) > MAX_FRAGMENT_LINES:
        raise FragmentError(f"SDP fragment has more than {MAX_FRAGMENT_LINES} lines")
    fragment = Fragment()
    for number, line in enumerate(lines, 1):
        if len(line) > 1024 or not _FRAGMENT_LINE.match(line):
            raise FragmentError(f"SDP fragment line {number} is not part of a trickle fragment")
        if line.startswith("a=candidate:"):
            fragment.candidates.append(line[2:])
        elif line.startswith("a=ice-ufrag:"):
            fragment.ufrag = line.split(":", 1)[1].strip()
        elif line.startswith("a=ice-pwd:"):
            fragment.pwd = line.split(":", 1)[1].strip()
        elif line == "a=end-of-candidates":
            fragment.end_of_candidates = True
    return fragment
