"""The one place that reads the environment.

Every process (API shim, Celery worker, beat, simulator, dev launcher) builds a `Settings`
with `load_settings()` and passes values down; nothing else touches `os.environ`. The names
are the operator contract documented in README's configuration table.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from limits import parse_many

DEFAULT_OSU_BASE_URL = "https://osu.ppy.sh"
# The file in OSUTRACK_DATA_DIR holding what a process needs to join `make run`'s stack.
STACK_ENV_NAME = "stack.env"


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str, name: str) -> int:
    """Seconds in "90s", "15m", "6h", "7d"."""
    text = text.strip().lower()
    unit = _DURATION_UNITS.get(text[-1:]) if text else None
    if unit is None or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise SettingsError(f"{name}: {text!r} is not a duration like 90s, 15m, 6h or 7d")
    return int(text[:-1]) * unit


def parse_refresh_intervals(text: str) -> tuple[tuple[float, int], ...]:
    """`REFRESH_INTERVALS`: "1d=1h,7d=6h,30d=1d,*=7d" -> ((86400, 3600), ..., (inf, 604800)).

    Each pair reads "idle for at most X: refresh every Y"; `*` is everybody else and must
    come last. Idle time is the time since the player's stats last changed.
    """
    pairs: list[tuple[float, int]] = []
    for part in text.split(","):
        idle, sep, every = part.partition("=")
        if not sep:
            raise SettingsError(f"REFRESH_INTERVALS: {part!r} is not IDLE=EVERY")
        limit = float("inf") if idle.strip() == "*" else float(_duration(idle, "REFRESH_INTERVALS"))
        pairs.append((limit, _duration(every, "REFRESH_INTERVALS")))
    if not pairs or pairs[-1][0] != float("inf"):
        raise SettingsError("REFRESH_INTERVALS must end with a *=EVERY pair")
    if [limit for limit, _ in pairs] != sorted(limit for limit, _ in pairs):
        raise SettingsError("REFRESH_INTERVALS idle limits must increase")
    return tuple(pairs)


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks, checked here so every process stops
    at start-up on a typo (a CIDR with host bits set, "10.0.0.1/8", is refused too)."""
    entries = tuple(part.strip() for part in _str(env, name).split(",") if part.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry)
        except ValueError as err:
            raise SettingsError(f"{name}: {entry!r} is not an IP address or CIDR ({err})") from None
    return entries


def _urls(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated database URLs; an unparsable one stops the process at start-up
    (the message names its position, never the URL, which holds a password)."""
    urls = tuple(part.strip() for part in _str(env, name).split(",") if part.strip())
    for position, url in enumerate(urls):
        if not url.startswith(("postgresql://", "postgresql+psycopg2://")):
            raise SettingsError(f"{name}: entry {position} is not a postgresql:// URL")
    return urls


def _rate_limit(env: Mapping[str, str], name: str, default: str) -> str:
    value = _str(env, name, default).lower()
    if value not in ("", "off"):
        try:
            parse_many(value)
        except ValueError:
            raise SettingsError(
                f"{name} must look like 60/minute or 60/minute;2/second (or off), got {value!r}"
            ) from None
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _str(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = _str(env, name).lower()
    if not value:
        return default
    if value not in ("on", "off"):
        raise SettingsError(f"{name} must be on or off, got {value!r}")
    return value == "on"


@dataclass(frozen=True)
class Settings:
    """Configuration of one process, read once at start-up."""

    database_url: str = ""
    # Streaming replicas of DATABASE_URL that serve the read endpoints (README, Operations);
    # none: every read goes to DATABASE_URL. A replica further behind than the bound is
    # skipped until it catches up.
    database_replica_urls: tuple[str, ...] = field(default=(), repr=False)
    replica_max_lag_seconds: float = 10.0
    redis_url: str = ""
    data_dir: Path = Path(".osutrack")
    host: str = "127.0.0.1"
    port: int = 8000
    # Threads per API process under `make run`; each waiting POST /update holds one.
    api_threads: int = 4
    # One log line per request from the API under `make run`.
    access_log: bool = True

    osu_api_base_url: str = DEFAULT_OSU_BASE_URL
    osu_client_id: str = ""
    osu_client_secret: str = field(default="", repr=False)
    osu_api_key: str = field(default="", repr=False)
    # "v1" or "v2"; empty means: v2 when client credentials are set, else v1 when a key is.
    osu_api_version: str = ""
    osu_api_timeout_seconds: float = 10.0
    # A job (or refresh batch) that meets a transient upstream failure is retried with
    # exponential backoff from this first delay, for up to the horizon after its first
    # attempt; then it fails.
    osu_api_retry_backoff_seconds: float = 0.5
    osu_api_retry_horizon_seconds: float = 120.0
    # One budget for every worker process on every machine, e.g. "60/minute;2/second";
    # "off" disables it (tests and benchmarks against the simulator). Empty: the default
    # for the API version (`effective_rate_limit`).
    osu_api_rate_limit: str = ""
    # How long a worker process may wait for a budget slot before it hands its job back to
    # its place in the queue (the job is not failed).
    osu_api_slot_wait_seconds: float = 15.0

    update_wait_seconds: float = 60.0
    update_wait_max_seconds: float = 60.0
    job_ttl_seconds: int = 86400
    bestplays_refresh_seconds: int = 60
    bestplays_table_size: int = 10000
    peaks_recompute_seconds: int = 3600
    worker_concurrency: int = 2
    statement_timeout_ms: int = 10000
    log_level: str = "INFO"

    # Incoming limits per client IP ("off" disables one), whose X-Forwarded-For to
    # believe, and the update backlog beyond which POST /update is refused.
    rate_limit_update: str = "5/minute"
    rate_limit_read: str = "600/minute"
    trusted_proxies: tuple[str, ...] = ()
    max_queue_depth: int = 1000

    # Scheduled refresh: the share of the upstream budget it may use, how often beat
    # plans it, and the interval per idle time (see `parse_refresh_intervals`).
    refresh_budget_share: float = 0.5
    refresh_schedule_seconds: int = 60
    refresh_intervals: tuple[tuple[float, int], ...] = parse_refresh_intervals(
        "1d=1h,7d=6h,30d=1d,365d=3d,*=7d"
    )

    simulator_port: int = 8090
    # Ports of the private Postgres and Redis that `make run` starts when DATABASE_URL or
    # REDIS_URL is unset.
    private_postgres_port: int = 54329
    private_redis_port: int = 63799

    @property
    def stack_env_path(self) -> Path:
        """Where `make run` writes the URLs of its private services (see `devstack.run`)."""
        return self.data_dir / STACK_ENV_NAME

    @property
    def osu_credentials_configured(self) -> bool:
        """True when real osu! API credentials (v2 client or v1 key) are set."""
        return bool((self.osu_client_id and self.osu_client_secret) or self.osu_api_key)

    @property
    def effective_api_version(self) -> str:
        """The upstream API flavour workers use: "v1" or "v2"."""
        if self.osu_api_version:
            return self.osu_api_version
        if self.osu_client_id and self.osu_client_secret:
            return "v2"
        if self.osu_api_key:
            return "v1"
        return "v2"

    @property
    def effective_rate_limit(self) -> str:
        """The upstream limit in `limits` notation, or "off"."""
        if self.osu_api_rate_limit:
            return self.osu_api_rate_limit
        # peppy asks v2 clients for about 60 requests a minute; v1's published limit is far
        # higher, and osu!track's own budget there was 600 a minute.
        return "60/minute" if self.effective_api_version == "v2" else "600/minute"


def _update_wait(env: Mapping[str, str], wait_max: float) -> float:
    """UPDATE_WAIT_SECONDS: 60 (or the maximum, if lower) when unset; refused above the
    maximum rather than silently lowered."""
    if not env.get("UPDATE_WAIT_SECONDS", "").strip():
        return min(60.0, wait_max)
    wait = _float(env, "UPDATE_WAIT_SECONDS", 60.0)
    if wait > wait_max:
        raise SettingsError(
            f"UPDATE_WAIT_SECONDS ({wait:g}) must not exceed UPDATE_WAIT_MAX_SECONDS ({wait_max:g})"
        )
    return wait


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build `Settings` from `env` (the process environment by default).

    Raises `SettingsError` naming the variable when a value is unusable, so a
    misconfigured process stops at start-up instead of failing on its first job.
    """
    env = os.environ if env is None else env
    version = _str(env, "OSU_API_VERSION").lower()
    if version not in ("", "v1", "v2"):
        raise SettingsError(f"OSU_API_VERSION must be v1 or v2, got {version!r}")
    wait_max = _float(env, "UPDATE_WAIT_MAX_SECONDS", 60.0)
    share = _float(env, "REFRESH_BUDGET_SHARE", 0.5)
    if share > 1:
        raise SettingsError(f"REFRESH_BUDGET_SHARE must be between 0 and 1, got {share}")
    return Settings(
        database_url=_str(env, "DATABASE_URL"),
        database_replica_urls=_urls(env, "DATABASE_REPLICA_URLS"),
        replica_max_lag_seconds=_float(env, "REPLICA_MAX_LAG_SECONDS", 10.0, minimum=1.0),
        redis_url=_str(env, "REDIS_URL"),
        data_dir=Path(_str(env, "OSUTRACK_DATA_DIR", ".osutrack")),
        host=_str(env, "HOST", "127.0.0.1"),
        port=_int(env, "PORT", 8000, minimum=1),
        api_threads=_int(env, "API_THREADS", 4, minimum=1),
        access_log=_switch(env, "ACCESS_LOG", True),
        osu_api_base_url=_str(env, "OSU_API_BASE_URL", DEFAULT_OSU_BASE_URL).rstrip("/"),
        osu_client_id=_str(env, "OSU_CLIENT_ID"),
        osu_client_secret=_str(env, "OSU_CLIENT_SECRET"),
        osu_api_key=_str(env, "OSU_API_KEY"),
        osu_api_version=version,
        osu_api_timeout_seconds=_float(env, "OSU_API_TIMEOUT_SECONDS", 10.0, minimum=0.1),
        osu_api_retry_backoff_seconds=_float(
            env, "OSU_API_RETRY_BACKOFF_SECONDS", 0.5, minimum=0.01
        ),
        osu_api_retry_horizon_seconds=_float(env, "OSU_API_RETRY_HORIZON_SECONDS", 120.0),
        osu_api_rate_limit=_rate_limit(env, "OSU_API_RATE_LIMIT", ""),
        osu_api_slot_wait_seconds=_float(env, "OSU_API_SLOT_WAIT_SECONDS", 15.0),
        update_wait_seconds=_update_wait(env, wait_max),
        update_wait_max_seconds=wait_max,
        job_ttl_seconds=_int(env, "JOB_TTL_SECONDS", 86400, minimum=60),
        bestplays_refresh_seconds=_int(env, "BESTPLAYS_REFRESH_SECONDS", 60, minimum=1),
        bestplays_table_size=_int(env, "BESTPLAYS_TABLE_SIZE", 10000, minimum=10000),
        peaks_recompute_seconds=_int(env, "PEAKS_RECOMPUTE_SECONDS", 3600, minimum=1),
        worker_concurrency=_int(env, "WORKER_CONCURRENCY", 2, minimum=1),
        statement_timeout_ms=_int(env, "STATEMENT_TIMEOUT_MS", 10000, minimum=100),
        log_level=_str(env, "LOG_LEVEL", "INFO").upper(),
        rate_limit_update=_rate_limit(env, "RATE_LIMIT_UPDATE", "5/minute"),
        rate_limit_read=_rate_limit(env, "RATE_LIMIT_READ", "600/minute"),
        trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
        max_queue_depth=_int(env, "MAX_QUEUE_DEPTH", 1000, minimum=1),
        refresh_budget_share=share,
        refresh_schedule_seconds=_int(env, "REFRESH_SCHEDULE_SECONDS", 60, minimum=1),
        refresh_intervals=parse_refresh_intervals(
            _str(env, "REFRESH_INTERVALS", "1d=1h,7d=6h,30d=1d,365d=3d,*=7d")
        ),
        simulator_port=_int(env, "SIMULATOR_PORT", 8090, minimum=1),
        private_postgres_port=_int(env, "OSUTRACK_PG_PORT", 54329, minimum=1),
        private_redis_port=_int(env, "OSUTRACK_REDIS_PORT", 63799, minimum=1),
    )


class _NameRecorder(dict[str, str]):
    """An empty environment that notes every variable asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.names.append(key)
        return default


def setting_names() -> tuple[str, ...]:
    """Every environment variable `load_settings` reads, in the order it reads them."""
    recorder = _NameRecorder()
    load_settings(recorder)
    return tuple(dict.fromkeys(recorder.names))


# What each kind of process cannot do its work without. Without REDIS_URL, Celery would
# fall back to its default broker (amqp on localhost) and retry it forever.
_NEEDS: dict[str, tuple[str, ...]] = {
    "api": ("DATABASE_URL", "REDIS_URL"),
    "worker": ("DATABASE_URL", "REDIS_URL", "OSU_CREDENTIALS"),
    "beat": ("REDIS_URL",),
    "admin": ("DATABASE_URL",),
    "migrate": ("DATABASE_URL",),
}
_LABELS = {
    "DATABASE_URL": "DATABASE_URL",
    "REDIS_URL": "REDIS_URL",
    "OSU_CREDENTIALS": "osu! API credentials (OSU_CLIENT_ID and OSU_CLIENT_SECRET, or OSU_API_KEY)",
}


def missing_configuration(settings: Settings, process: str) -> str | None:
    """The one-line reason why `process` ("api", "worker", "beat", "admin", "migrate")
    cannot run with `settings`, or None when it has everything it needs."""
    present = {
        "DATABASE_URL": bool(settings.database_url),
        "REDIS_URL": bool(settings.redis_url),
        "OSU_CREDENTIALS": settings.osu_credentials_configured,
    }
    labels = [_LABELS[name] for name in _NEEDS[process] if not present[name]]
    if not labels:
        return None
    what = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    env = settings.stack_env_path
    also = " (or start one with `make worker`)" if process == "worker" else ""
    return (
        f"{process} cannot start: {what} not set. To join the stack that `make run` runs "
        f"from {settings.data_dir}, load the file it wrote: `set -a; . {env}; set +a`{also}; "
        "otherwise set them for your own services (README, Configuration)."
    )


def require_configuration(settings: Settings, process: str) -> None:
    """Stop this process at once (exit status 2) when it lacks what it needs.

    Called first thing by every entry point, so a half-configured process never starts
    and then fails, or retries a default address, for ever.
    """
    reason = missing_configuration(settings, process)
    if reason is not None:
        print(reason, file=sys.stderr, flush=True)
        raise SystemExit(2)
