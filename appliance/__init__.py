"""The composition root of edge-appliance: config, CLI, daemon lifecycle, systemd and roles."""

__version__ = "0.1.0"
