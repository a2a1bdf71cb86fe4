"""Numbers printed as JavaScript's JSON.stringify prints them (expected texts from
ECMA-262 Number::toString)."""

from __future__ import annotations

import math

import orjson
import pytest

from api_shim.js_json import dumps_rows, js_number


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (120.0, "120"),
        (264.0, "264"),
        (100.0, "100"),
        (98.7036, "98.7036"),
        (1044.1, "1044.1"),
        (98.70355224609375, "98.70355224609375"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-3.5, "-3.5"),
        (0.0, "0"),
        (-0.0, "0"),
        (1e15, "1000000000000000"),
        (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (-1e21, "-1e+21"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (0.0001, "0.0001"),
        (0.000001, "0.000001"),
        (1.5e-6, "0.0000015"),
        (1e-7, "1e-7"),
        (1.25e-7, "1.25e-7"),
        (5e-324, "5e-324"),
        (math.nan, "null"),
        (math.inf, "null"),
        (-math.inf, "null"),
    ],
)
def test_numbers_print_as_javascript_does(value: float, printed: str) -> None:
    assert js_number(value) == printed


def test_rows_keep_key_order_and_only_floats_change() -> None:
    rows = [(1, 2.0, "3", None, 2**62), (5, 0.5, "x", True, -1)]
    assert dumps_rows(("b", "a", "c", "d", "e"), rows) == (
        b'[{"b":1,"a":2,"c":"3","d":null,"e":4611686018427387904},'
        b'{"b":5,"a":0.5,"c":"x","d":true,"e":-1}]'
    )
    assert dumps_rows(("a",), []) == orjson.dumps([])
