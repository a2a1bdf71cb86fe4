"""JSON as the original's `JSON.stringify` printed it: numbers in JavaScript's form.

JavaScript prints a number with the fewest digits that read back as the same double, as
Python's `repr` does, but a whole number has no `.0` (`120`, not `120.0`), exponents start
at 1e21 and below 1e-6 and carry a sign (`1e+21`, `1e-7`), and NaN or an infinity print as
`null`. Postgres prints a double the same way between 1e-4 and 1e15 (`SHORTEST_RANGE`);
bodies built there fall back to `dumps` for any float outside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson

# Doubles that Postgres (`float8out`, extra_float_digits >= 1) prints exactly as
# JavaScript does: zero, and magnitudes in [1e-4, 1e15). Outside it Postgres uses
# exponents (`1e+15`, `1e-05`) where JavaScript does not, or prints `-0` and `"NaN"`.
SHORTEST_RANGE = (1e-4, 1e15)


def js_number(value: float) -> str:
    """`value` as JavaScript's `JSON.stringify` prints it."""
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    # value = 0.digits x 10^point (ECMA-262 Number::toString's n).
    point = len(digit_tuple) + exponent
    prefix = "-" if sign else ""
    count = len(digits)
    if count <= point <= 21:
        return prefix + digits + "0" * (point - count)
    if 0 < point <= 21:
        return prefix + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return prefix + "0." + "0" * -point + digits
    shown = point - 1
    mantissa = digits if count == 1 else digits[0] + "." + digits[1:]
    return f"{prefix}{mantissa}e{'+' if shown > 0 else '-'}{abs(shown)}"


def _value(value: Any) -> Any:
    return orjson.Fragment(js_number(value)) if isinstance(value, float) else value


def dumps_rows(keys: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A JSON array of one object per row (`keys` in order), floats as `js_number`."""
    return orjson.dumps(
        [{key: _value(value) for key, value in zip(keys, row, strict=True)} for row in rows]
    )
