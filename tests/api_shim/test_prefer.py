"""The Prefer header of POST /update (RFC 7240): parsing and the wait it chooses."""

from __future__ import annotations

import pytest

from api_shim.prefer import Preferences, choose_wait, parse_prefer


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Preferences()),
        ("", Preferences()),
        ("respond-async", Preferences(respond_async=True)),
        ("Respond-Async", Preferences(respond_async=True)),
        ("wait=10", Preferences(wait=10)),
        ("respond-async, wait=5", Preferences(respond_async=True, wait=5)),
        ('wait="7"', Preferences(wait=7)),
        ("wait=5;foo=bar, respond-async", Preferences(respond_async=True, wait=5)),
        # The first wait counts; malformed and unknown preferences are ignored.
        ("wait=3, wait=9", Preferences(wait=3)),
        ("wait=-1, wait=abc, wait=1.5, return=minimal", Preferences()),
        ("wait=1234567890", Preferences()),
        ("wait=\u0661", Preferences()),
        ("respond-async=1", Preferences()),
    ],
)
def test_parse_prefer(header: str | None, expected: Preferences) -> None:
    assert parse_prefer(header) == expected


def test_nothing_new_waits_the_default_and_applies_nothing() -> None:
    choice = choose_wait(Preferences(), None, 60, 60)
    assert (choice.seconds, choice.applied) == (60, "")


def test_respond_async_answers_at_once() -> None:
    choice = choose_wait(Preferences(respond_async=True), None, 60, 60)
    assert (choice.seconds, choice.applied) == (0, "respond-async")


def test_prefer_wait_sets_the_wait_and_is_capped_at_the_maximum() -> None:
    assert choose_wait(Preferences(wait=5), None, 60, 60).seconds == 5
    capped = choose_wait(Preferences(wait=600), None, 60, 60)
    assert (capped.seconds, capped.applied) == (60, "wait=60")
    both = choose_wait(Preferences(respond_async=True, wait=3), None, 60, 60)
    assert (both.seconds, both.applied) == (3, "respond-async, wait=3")


def test_the_wait_parameter_wins_over_prefer_wait() -> None:
    choice = choose_wait(Preferences(wait=30), 2.5, 60, 60)
    assert (choice.seconds, choice.applied) == (2.5, "")
