"""Simulcast negotiation (RFC 8853) in the SDP text, which aiortc neither writes nor reads.

Browsers also send simulcast without rids: an offer munged to list several SSRCs in
``a=ssrc-group:SIM`` (as twilio-video.js does for VP8), each with its RTX SSRC in an
``a=ssrc-group:FID``. ``ssrc_simulcast`` reads those groups.

The SFU offers a receive-only m-line for each track a participant publishes. For a
simulcast publication the offer lists the rids it will receive (``a=rid:<rid> recv`` and
``a=simulcast:recv <rid>;<rid>``); a browser answering it makes one send encoding per rid
and answers ``a=simulcast:send ...``. aiortc ignores both attributes when it parses the
answer, so the offer is amended after ``setLocalDescription`` (aiortc keeps its own copy)
and the answer is read here too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

#: RFC 8851 rid-syntax (alphanumerics, ``-`` and ``_``), at most 16 characters here.
RID: Final = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_MID = re.compile(r"^a=mid:(\S+)\s*$", re.M)
_SIMULCAST = re.compile(r"^a=simulcast:(.*)$", re.M)
_SSRC_GROUP = re.compile(r"^a=ssrc-group:(SIM|FID)((?: [0-9]{1,10})+)\s*$", re.M)
#: SSRCs of one SIM group taken as layers, at most (browsers send three).
MAX_SSRC_LAYERS: Final = 4


def _split(sdp: str) -> tuple[str, list[str]]:
    newline = "\r\n" if "\r\n" in sdp else "\n"
    return newline, sdp.split(newline)


def offer_simulcast(
    sdp: str,
    rids_by_mid: Mapping[str, Sequence[str]],
    paused: Mapping[str, Collection[str]] | None = None,
) -> str:
    """``sdp`` with the receive-simulcast lines for each m-section whose mid is a key.

    ``rids_by_mid`` maps a mid to its rids, lowest layer first (a browser sends them in
    that order). ``paused`` (by mid) are written ``~rid``: a browser applying the offer
    sets those encodings inactive and every other one active, so each offer must say which
    layers are paused now. Sections that already have rid or simulcast lines are left
    alone. Raises ValueError for a rid outside RFC 8851's syntax or a repeated rid.
    """
    paused = paused or {}
    for rids in rids_by_mid.values():
        if len(set(rids)) != len(rids) or not all(RID.match(r) for r in rids):
            raise ValueError(f"bad rid list {list(rids)!r}")
    if not rids_by_mid:
        return sdp
    newline, lines = _split(sdp)
    out: list[str] = []
    pending: list[str] = []  # the lines for the current section, written at its end
    for line in lines:
        if line.startswith("m="):
            out.extend(pending)
            pending = []
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :].strip()
            listed = rids_by_mid.get(mid)
            if listed:
                off = paused.get(mid, ())
                pending = [f"a=rid:{rid} recv" for rid in listed]
                pending.append(
                    "a=simulcast:recv " + ";".join(f"~{r}" if r in off else r for r in listed)
                )
        elif line.startswith(("a=rid:", "a=simulcast:")):
            pending = []
        if line == "" and pending:
            out.extend(pending)  # before the description's final empty line
            pending = []
        out.append(line)
    out.extend(pending)
    return newline.join(out)


def answered_rids(sdp: str) -> dict[str, list[str]]:
    """``mid -> rids`` the answer ``sdp`` sends as simulcast (``a=simulcast:send``).

    Paused rids (``~rid``) and all but the first of a group of alternatives
    (``rid1,rid2``) are left out; rids not matching the syntax are dropped. m-sections
    without a send simulcast line do not appear.
    """
    out: dict[str, list[str]] = {}
    _, lines = _split(sdp.replace("\r\n", "\n"))
    for section in "\n".join(lines).split("\nm=")[1:]:
        mid = _MID.search(section)
        simulcast = _SIMULCAST.search(section)
        if mid is None or simulcast is None:
            continue
        parts = simulcast.group(1).split()
        rids: list[str] = []
        for direction, streams in zip(parts[::2], parts[1::2], strict=False):
            if direction != "send":
                continue
            for group in streams.split(";"):
                first = group.split(",")[0]
                if first.startswith("~"):
                    continue
                if RID.match(first) and first not in rids:
                    rids.append(first)
        if rids:
            out[mid.group(1)] = rids
    return out


@dataclass(frozen=True)
class SsrcSimulcast:
    """The simulcast of one m-section signalled by SSRCs: ``ssrcs`` lowest layer first (the
    SIM group's order, which is the browser's encoding order) and ``rtx`` (RTX SSRC ->
    the media SSRC it repairs, from the FID groups of those SSRCs)."""

    ssrcs: tuple[int, ...]
    rtx: Mapping[int, int]


def ssrc_simulcast(sdp: str) -> dict[str, SsrcSimulcast]:
    """``mid -> SsrcSimulcast`` for each m-section of ``sdp`` with an ``a=ssrc-group:SIM`` of
    two to ``MAX_SSRC_LAYERS`` distinct SSRCs (and no rid simulcast, which takes precedence).
    A section with more than one SIM group, or a malformed one, does not appear."""
    out: dict[str, SsrcSimulcast] = {}
    for section in sdp.replace("\r\n", "\n").split("\nm=")[1:]:
        mid = _MID.search(section)
        if mid is None or _SIMULCAST.search(section) is not None:
            continue
        sims: list[list[int]] = []
        fids: list[list[int]] = []
        for semantic, items in _SSRC_GROUP.findall(section):
            ssrcs = [int(x) for x in items.split()]
            if any(x >= 1 << 32 for x in ssrcs):
                break
            (sims if semantic == "SIM" else fids).append(ssrcs)
        else:
            if len(sims) != 1:
                continue
            layers = sims[0]
            if not 2 <= len(layers) <= MAX_SSRC_LAYERS or len(set(layers)) != len(layers):
                continue
            rtx = {
                fid[1]: fid[0]
                for fid in fids
                if len(fid) == 2 and fid[0] in layers and fid[1] not in layers
            }
            out[mid.group(1)] = SsrcSimulcast(tuple(layers), rtx)
    return out
