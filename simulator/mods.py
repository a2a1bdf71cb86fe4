"""Legacy mod bitmask <-> acronym conversion (osu! API v1 ``enabled_mods``, v2 ``mods``).

Bits follow the legacy bitset of the real API. Nightcore always carries DoubleTime and
Perfect always carries SuddenDeath, so converting acronyms to bits adds the implied mod,
and converting bits to acronyms drops it again (the API shows ``["NC"]`` for 576).

The table repeats `worker.upstream.mods` on purpose: the simulator stands in for osu!, so
it must not share code with the client it tests, or a wrong bit would pass unnoticed.
"""

from __future__ import annotations

from functools import lru_cache

MOD_BITS: dict[str, int] = {
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
    "CO": 33554432,
    "1K": 67108864,
    "3K": 134217728,
    "2K": 268435456,
    "V2": 536870912,
    "MR": 1073741824,
}

# Mod -> the mod it always comes with in the legacy bitmask.
IMPLIED: dict[str, str] = {"NC": "DT", "PF": "SD"}


def acronyms_to_bits(acronyms: list[str]) -> int:
    """Bitmask for ``acronyms``, adding implied mods; unknown (lazer-only) mods count 0."""
    bits = 0
    for acronym in acronyms:
        bits |= MOD_BITS.get(acronym, 0)
        implied = IMPLIED.get(acronym)
        if implied is not None:
            bits |= MOD_BITS[implied]
    return bits


def bits_to_acronyms(bits: int) -> list[str]:
    """Acronyms for ``bits`` in bit order, without the mods implied by another one."""
    return list(_acronyms(bits))


@lru_cache(maxsize=4096)
def _acronyms(bits: int) -> tuple[str, ...]:
    present = [acronym for acronym, bit in MOD_BITS.items() if bits & bit]
    hidden = {IMPLIED[a] for a in present if a in IMPLIED}
    return tuple(a for a in present if a not in hidden)
