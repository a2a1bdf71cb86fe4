"""The setting declarations: each parser, defaults, refusals, and README's generated table."""

from __future__ import annotations

import ipaddress
import math
from pathlib import Path

import pytest

from osutrack.settings import (
    TABLE_END,
    TABLE_START,
    Rate,
    RateLimit,
    Settings,
    SettingsError,
    declarations,
    load_settings,
    markdown_table,
    parse_refresh_intervals,
    readme_with_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"
DATABASE_URL = "postgresql+psycopg2://osutrack:hunter2@db.internal:5432/osutrack"


def test_defaults_are_typed_and_match_the_declared_text() -> None:
    settings = load_settings({})

    assert settings == Settings()
    assert settings.database_url == ""
    assert settings.redis_url == ""
    assert settings.osu_api_base_url == "https://osu.ppy.sh"
    assert settings.osu_api_rate_limit is None
    assert settings.rate_limit_update == RateLimit("5/minute", (Rate(5, 60),))
    assert settings.rate_limit_read == RateLimit("600/minute", (Rate(600, 60),))
    assert settings.trusted_proxies == ()
    assert settings.update_wait_seconds == 60.0
    assert settings.update_wait_max_seconds == 60.0
    assert settings.job_ttl_seconds == 86400
    assert settings.refresh_budget_share == 0.5
    assert settings.refresh_intervals == (
        (86400.0, 3600),
        (604800.0, 21600),
        (2592000.0, 86400),
        (31536000.0, 259200),
        (math.inf, 604800),
    )
    assert settings.access_log is True
    assert settings.data_dir == Path(".osutrack")
    assert settings.log_level == "INFO"
    assert (settings.port, settings.private_postgres_port, settings.private_redis_port) == (
        8000,
        54329,
        63799,
    )


def test_every_declaration_default_parses_to_the_field_default() -> None:
    defaults = Settings()
    for name, declaration in declarations().items():
        assert declaration.read({}) == getattr(defaults, name), declaration.variable
        if declaration.default:
            assert declaration.parse(declaration.default) == getattr(defaults, name)


def _variables() -> list[str]:
    return [declaration.variable for declaration in declarations().values()]


def test_each_variable_is_declared_once() -> None:
    names = _variables()
    assert len(names) == len(set(names))
    assert "DATABASE_URL" in names
    assert "TRUSTED_PROXIES" in names


def test_values_are_parsed_to_their_types() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": f"  {DATABASE_URL} ",
            "REDIS_URL": "redis://:pw@cache:6379/2",
            "OSU_API_BASE_URL": "http://127.0.0.1:8090/",
            "OSU_API_RATE_LIMIT": "60/Minute;2/second",
            "RATE_LIMIT_UPDATE": "OFF",
            "TRUSTED_PROXIES": " 127.0.0.1 , fd00::/8,",
            "OSU_API_TIMEOUT_SECONDS": "2.5",
            "JOB_TTL_SECONDS": "120",
            "REFRESH_INTERVALS": "1d=1h,7d=6h,*=7d",
            "ACCESS_LOG": "OFF",
            "OSU_API_VERSION": "V1",
            "LOG_LEVEL": "debug",
            "OSUTRACK_DATA_DIR": "/var/lib/osutrack",
        }
    )

    assert settings.database_url == DATABASE_URL
    assert settings.redis_url == "redis://:pw@cache:6379/2"
    assert settings.osu_api_base_url == "http://127.0.0.1:8090"
    assert settings.osu_api_rate_limit == RateLimit(
        "60/minute;2/second", (Rate(60, 60), Rate(2, 1))
    )
    assert settings.rate_limit_update.off
    assert str(settings.rate_limit_update) == "off"
    assert settings.trusted_proxies == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert settings.osu_api_timeout_seconds == 2.5
    assert settings.job_ttl_seconds == 120
    assert settings.refresh_intervals == ((86400.0, 3600), (604800.0, 21600), (math.inf, 604800))
    assert settings.access_log is False
    assert settings.osu_api_version == "v1"
    assert settings.log_level == "DEBUG"
    assert settings.data_dir == Path("/var/lib/osutrack")


def test_blank_non_url_values_take_the_default() -> None:
    settings = load_settings({"PORT": "", "RATE_LIMIT_READ": "  ", "OSU_API_RATE_LIMIT": ""})
    assert settings.port == 8000
    assert settings.rate_limit_read == Settings().rate_limit_read
    assert settings.osu_api_rate_limit is None


def test_effective_rate_limit_follows_the_api_version() -> None:
    assert str(load_settings({}).effective_rate_limit) == "60/minute"
    assert str(load_settings({"OSU_API_KEY": "k"}).effective_rate_limit) == "600/minute"
    assert load_settings({"OSU_API_RATE_LIMIT": "off"}).effective_rate_limit.off


@pytest.mark.parametrize("variable", ["DATABASE_URL", "REDIS_URL", "OSU_API_BASE_URL"])
@pytest.mark.parametrize("value", ["", "   "])
def test_a_url_set_but_empty_is_refused(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({variable: value})
    message = str(refused.value)
    assert message.startswith(f"{variable} is set but empty: expected ")
    assert "URL like" in message
    assert "leave it unset" in message


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("DATABASE_URL", "mysql://u@db/x", "a SQLAlchemy Postgres URL like"),
        ("DATABASE_URL", "not a url", "a SQLAlchemy Postgres URL like"),
        ("REDIS_URL", "localhost:6379", "a Redis URL like"),
        ("REDIS_URL", "http://cache:6379/0", "a Redis URL like"),
        ("OSU_API_BASE_URL", "osu.ppy.sh", "an http(s) URL like"),
        ("OSU_API_BASE_URL", "ftp://osu.ppy.sh", "an http(s) URL like"),
    ],
)
def test_a_url_that_is_not_one_is_refused(variable: str, value: str, accepted: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({variable: value})
    assert str(refused.value).startswith(f"{variable}={value!r} is refused: expected {accepted}")


def test_a_refused_url_does_not_show_its_password() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"REDIS_URL": "http://:hunter2@cache:6379/0"})
    assert "hunter2" not in str(refused.value)
    assert "http://:***@cache:6379/0" in str(refused.value)


def test_a_refused_replica_list_names_the_entry_and_shows_no_url() -> None:
    urls = "postgresql://reader:first@db1/osutrack, mysql://reader:second@db2/osutrack"
    with pytest.raises(SettingsError) as refused:
        load_settings({"DATABASE_REPLICA_URLS": urls})
    message = str(refused.value)
    assert message.startswith("DATABASE_REPLICA_URLS is refused: entry 1 is not")
    for secret_part in ("first", "second", "db2"):
        assert secret_part not in message


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("PORT", "0", "an integer from 1 to 65535"),
        ("PORT", "65536", "an integer from 1 to 65535"),
        ("PORT", "80.5", "an integer from 1 to 65535"),
        ("OSUTRACK_PG_PORT", "-1", "an integer from 1 to 65535"),
        ("JOB_TTL_SECONDS", "59", "an integer of at least 60"),
        ("BESTPLAYS_TABLE_SIZE", "9999", "an integer of at least 10000"),
        ("STATEMENT_TIMEOUT_MS", "99", "an integer of at least 100"),
        ("WORKER_CONCURRENCY", "0", "an integer of at least 1"),
        ("API_THREADS", "many", "an integer of at least 1"),
        ("MAX_QUEUE_DEPTH", "0", "an integer of at least 1"),
        ("OSU_API_TIMEOUT_SECONDS", "0.05", "a number of at least 0.1"),
        ("OSU_API_RETRY_BACKOFF_SECONDS", "0", "a number of at least 0.01"),
        ("OSU_API_SLOT_WAIT_SECONDS", "-1", "a number of at least 0"),
        ("OSU_API_RETRY_HORIZON_SECONDS", "nan", "a number of at least 0"),
        ("UPDATE_WAIT_MAX_SECONDS", "inf", "a number of at least 0"),
        ("REFRESH_BUDGET_SHARE", "1.5", "a number from 0 to 1"),
        ("REFRESH_BUDGET_SHARE", "-0.1", "a number from 0 to 1"),
        ("OSU_API_VERSION", "v3", "one of v1, v2"),
        ("LOG_LEVEL", "loud", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("ACCESS_LOG", "yes", "on or off"),
        ("RATE_LIMIT_UPDATE", "5/fortnight", "a rate like 60/minute"),
        ("RATE_LIMIT_READ", "0/minute", "a rate like 60/minute"),
        ("OSU_API_RATE_LIMIT", "lots", "a rate like 60/minute"),
    ],
)
def test_an_out_of_range_or_malformed_value_is_refused_naming_it(
    variable: str, value: str, accepted: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({variable: value})
    assert str(refused.value).startswith(f"{variable}={value!r} is refused: expected {accepted}")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("proxy.internal", "'proxy.internal' is not an IP address or CIDR network"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or CIDR network"),
        ("10.0.0.1/8", "has host bits set"),
        ("127.0.0.1, ::g", "'::g' is not an IP address or CIDR network"),
    ],
)
def test_a_bad_trusted_proxy_is_refused_naming_the_variable(value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"TRUSTED_PROXIES": value})
    message = str(refused.value)
    assert message.startswith(f"TRUSTED_PROXIES={value!r} is refused: ")
    assert reason in message
    assert "expected comma-separated IP addresses or CIDR networks" in message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1d=1h", "the last pair must be *=EVERY"),
        ("7d=6h,1d=1h,*=7d", "the idle limits must increase"),
        ("1d,*=7d", "'1d' is not IDLE=EVERY"),
        ("1w=1h,*=7d", "'1w' is not a duration"),
        ("0d=1h,*=7d", "'0d' is not a duration"),
    ],
)
def test_bad_refresh_intervals_are_refused_saying_why(value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"REFRESH_INTERVALS": value})
    message = str(refused.value)
    assert message.startswith(f"REFRESH_INTERVALS={value!r} is refused: {reason}")
    assert "expected comma-separated IDLE=EVERY durations" in message


def test_parse_refresh_intervals() -> None:
    assert parse_refresh_intervals("90s=15m, *=2d") == ((90.0, 900), (math.inf, 172800))


def test_rate_limit_parse() -> None:
    assert RateLimit.parse("off").rates == ()
    assert RateLimit.parse(" 5/minute ").rates == (Rate(5, 60),)
    assert RateLimit.parse("60/minute;2/second").rates == (Rate(60, 60), Rate(2, 1))
    assert RateLimit.parse("10/2 hours").rates == (Rate(10, 7200),)
    for bad in ("", "minute", "0/second", "5/minute;"):
        with pytest.raises(ValueError, match=r"^$"):
            RateLimit.parse(bad)


def test_update_wait_is_refused_above_its_maximum_not_lowered() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"UPDATE_WAIT_SECONDS": "45", "UPDATE_WAIT_MAX_SECONDS": "30"})
    assert str(refused.value) == (
        "UPDATE_WAIT_SECONDS='45' is refused: expected at most UPDATE_WAIT_MAX_SECONDS (30)"
    )
    assert load_settings({"UPDATE_WAIT_SECONDS": "30", "UPDATE_WAIT_MAX_SECONDS": "30"}) == (
        load_settings({"UPDATE_WAIT_MAX_SECONDS": "30"})
    )
    # Unset, the default wait is 60 s, or the maximum when that is lower.
    assert load_settings({"UPDATE_WAIT_MAX_SECONDS": "30"}).update_wait_seconds == 30.0
    assert load_settings({"UPDATE_WAIT_MAX_SECONDS": "90"}).update_wait_seconds == 60.0


def test_secrets_stay_out_of_the_repr() -> None:
    settings = load_settings({"OSU_CLIENT_SECRET": "s3cret", "OSU_API_KEY": "k3y"})
    assert settings.osu_client_secret == "s3cret"
    assert "s3cret" not in repr(settings)
    assert "k3y" not in repr(settings)


def test_readme_configuration_table_matches_the_declarations() -> None:
    readme = README.read_text()
    assert readme_with_table(readme) == readme, (
        "README.md's configuration table differs from the declarations in "
        "osutrack/settings.py: run `make docs` to regenerate it"
    )


def test_the_table_has_one_row_per_setting_between_the_markers() -> None:
    table = markdown_table()
    rows = table.splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [f"| `{name}`" for name in _variables()]
    stale = f"intro\n{TABLE_START}\n| old |\n{TABLE_END}\noutro\n"
    assert readme_with_table(stale) == f"intro\n{TABLE_START}\n{table}{TABLE_END}\noutro\n"
    with pytest.raises(ValueError, match="settings table"):
        readme_with_table("no markers here")
