"""If-None-Match matching (weak comparison, lists, `*`) and ETag shapes."""

from __future__ import annotations

from api_shim.http_cache import etag, matches


def test_etags_are_weak_and_name_version_and_parameters() -> None:
    tag = etag(7, "hiscores", 1, 0, "-infinity", "infinity")
    assert tag.startswith('W/"7-')
    assert tag.endswith('"')
    assert tag == etag(7, "hiscores", 1, 0, "-infinity", "infinity")
    assert tag != etag(8, "hiscores", 1, 0, "-infinity", "infinity")
    assert tag != etag(7, "hiscores", 2, 0, "-infinity", "infinity")
    assert tag != etag(7, "stats_history", 1, 0, "-infinity", "infinity")


def test_if_none_match_compares_weakly_in_lists_and_star() -> None:
    tag = 'W/"7-00ff"'
    assert matches(tag, tag)
    assert matches('"7-00ff"', tag)
    assert matches('W/"1-aa", W/"7-00ff"', tag)
    assert matches(' "x" ,"7-00ff" ', tag)
    assert matches("*", tag)
    assert not matches('W/"7-00fe"', tag)
    assert not matches('W/"1-aa", "2-bb"', tag)
    assert not matches("", tag)
    assert not matches(None, tag)
    assert not matches("*", None)
