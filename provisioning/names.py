"""The unit's DNS names, shared by the certificate and the mDNS announcement."""

from __future__ import annotations

import re
import socket


def dns_label(name: str) -> str:
    """A hostname label from a unit name: lower case, letters, digits and hyphens, <= 63."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return label or "edge-appliance"


def unit_hostnames(unit_name: str) -> list[str]:
    """Names the server certificate must cover: ``<label>.local``, the OS hostname (bare and
    ``.local``) and ``localhost``."""
    names = [f"{dns_label(unit_name)}.local"]
    host = socket.gethostname().split(".", 1)[0].lower()
    if host:
        names += [host, f"{host}.local"]
    names.append("localhost")
    return list(dict.fromkeys(names))
