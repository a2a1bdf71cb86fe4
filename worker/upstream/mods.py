"""osu! mods as the legacy (v1) bitmask."""

from __future__ import annotations

from collections.abc import Iterable

# Bits from osu!'s LegacyMods (see shared notes, osu-api.md 1.4). Lazer-only mods have no
# bit and count as 0, as osu!track's own converter does.
LEGACY_MOD_BITS: dict[str, int] = {
    "NF": 1,
    "EZ": 2,
    "TD": 4,
    "HD": 8,
    "HR": 16,
    "SD": 32,
    "DT": 64,
    "RX": 128,
    "HT": 256,
    "NC": 512,
    "FL": 1024,
    "AT": 2048,
    "SO": 4096,
    "AP": 8192,
    "PF": 16384,
    "4K": 32768,
    "5K": 65536,
    "6K": 131072,
    "7K": 262144,
    "8K": 524288,
    "FI": 1048576,
    "RD": 2097152,
    "CN": 4194304,
    "TP": 8388608,
    "9K": 16777216,
    "DS": 33554432,
    "1K": 67108864,
    "3K": 134217728,
    "2K": 268435456,
    "V2": 536870912,
    "MR": 1073741824,
}

# The stable client always sets the parent mod with these (NC is DT, PF is SD, DC is HT).
IMPLIED_MODS: dict[str, str] = {"NC": "DT", "PF": "SD", "DC": "HT"}


def mods_bitmask(acronyms: Iterable[str]) -> int:
    """The v1 `enabled_mods` value for a list of mod acronyms."""
    mask = 0
    for acronym in acronyms:
        name = acronym.upper()
        mask |= LEGACY_MOD_BITS.get(name, 0)
        implied = IMPLIED_MODS.get(name)
        if implied:
            mask |= LEGACY_MOD_BITS[implied]
    return mask
