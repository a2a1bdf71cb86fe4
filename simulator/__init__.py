"""osu! API simulator: a local stand-in for osu.ppy.sh API v1 and v2 (see ``simulator.app``)."""
