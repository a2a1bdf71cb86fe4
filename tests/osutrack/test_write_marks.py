"""Write marks in the real test Redis: positions parse, and a mark only moves forward."""

from __future__ import annotations

import pytest
import redis

from osutrack import write_marks


def test_lsn_text_is_parsed_as_a_byte_position() -> None:
    assert write_marks.parse_lsn("0/3001100") == 0x3001100
    assert write_marks.parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    with pytest.raises(ValueError, match="not an LSN"):
        write_marks.parse_lsn("3001100")


def test_a_mark_keeps_the_later_position(redis_client: redis.Redis) -> None:
    assert write_marks.written_up_to(redis_client, 7) is None
    write_marks.record(redis_client, 7, "1/00000010", ttl=60)
    # An update of another mode that committed earlier but reports later.
    write_marks.record(redis_client, 7, "0/FFFFFFFF", ttl=60)
    assert write_marks.written_up_to(redis_client, 7) == (1 << 32) | 0x10
    write_marks.record(redis_client, 7, "1/00000020", ttl=60)
    assert write_marks.written_up_to(redis_client, 7) == (1 << 32) | 0x20
    assert 0 < redis_client.ttl(write_marks.mark_key(7)) <= 60
    assert write_marks.written_up_to(redis_client, 8) is None


def test_marks_outlive_the_lag_bound() -> None:
    assert write_marks.ttl_seconds(10.0) > 10
