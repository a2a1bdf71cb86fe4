"""The pure parts of read routing: replica lag from position samples, and the settings."""

from __future__ import annotations

import math

import pytest

from api_shim.replicas import replica_lag
from osutrack.settings import SettingsError, load_settings

SAMPLES = [(100.0, 1000), (101.0, 2000), (102.0, 3000)]


def test_a_replica_past_the_latest_sample_lags_by_that_sample_s_age() -> None:
    assert replica_lag(SAMPLES, 3000, now=102.25) == (0.25, True)
    assert replica_lag(SAMPLES, 5000, now=102.25) == (0.25, True)


def test_a_replica_between_samples_lags_since_the_last_one_it_has_replayed() -> None:
    assert replica_lag(SAMPLES, 2500, now=103.0) == (2.0, True)
    assert replica_lag(SAMPLES, 1000, now=103.0) == (3.0, True)


def test_a_replica_behind_every_sample_has_only_a_lower_bound() -> None:
    assert replica_lag(SAMPLES, 999, now=110.0) == (10.0, False)


def test_without_samples_the_lag_is_unknown() -> None:
    seconds, bounded = replica_lag([], 5000, now=1.0)
    assert math.isnan(seconds)
    assert not bounded


def test_replica_urls_are_a_comma_separated_list_and_default_to_none() -> None:
    assert load_settings({}).database_replica_urls == ()
    settings = load_settings(
        {
            "DATABASE_REPLICA_URLS": " postgresql://u:secret@a:5432/db ,"
            "postgresql+psycopg2://u:secret@b/db,",
            "REPLICA_MAX_LAG_SECONDS": "30",
        }
    )
    assert settings.database_replica_urls == (
        "postgresql://u:secret@a:5432/db",
        "postgresql+psycopg2://u:secret@b/db",
    )
    assert settings.replica_max_lag_seconds == 30.0
    assert "secret" not in repr(settings)


def test_a_replica_url_that_is_not_postgres_is_refused_without_echoing_it() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"DATABASE_REPLICA_URLS": "postgresql://a/db,mysql://u:secret@b/db"})
    assert "entry 1" in str(refused.value)
    assert "secret" not in str(refused.value)
