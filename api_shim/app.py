"""The Falcon ASGI application of the osu!track API shim."""

from __future__ import annotations

import falcon.asgi

from api_shim import errors
from api_shim.docs import spec
from api_shim.health_endpoints import HealthResource, PingResource
from api_shim.history_endpoints import HiscoresResource, StatsHistoryResource
from api_shim.metrics_endpoint import MetricsResource
from api_shim.middleware import QueryStringGuard, ReadOnlyCors, Request
from api_shim.ranking_endpoints import BestPlaysResource, PeakResource
from api_shim.ratelimit import DeclaredRateLimitRouter, InboundLimiter, InboundRateLimit
from api_shim.services import Services, StartServices
from api_shim.update_endpoints import JobResource, UpdateResource
from osutrack.settings import Settings


def create_app(settings: Settings, *, reads_on_loop: bool = True) -> falcon.asgi.App:
    """Build the app; each process builds its Postgres, Redis and broker handles when it
    starts serving (`Services.start`) and connects them on first use.

    Nothing is opened here, so the app can be created before Granian forks its workers.
    `reads_on_loop=False` moves the short reads to the thread pool (`Services.read`).
    Raises `UndeclaredRateLimit` when a route's resource declares no `rate_limit`.
    """
    services = Services.from_settings(settings, reads_on_loop=reads_on_loop)
    # Every route's resource declares its rate-limit class, or adding the route raises.
    router = DeclaredRateLimitRouter()
    app = falcon.asgi.App(request_type=Request, router=router)
    # First: every read is counted, even one a guard refuses.
    inbound_limit = InboundRateLimit(
        InboundLimiter.from_settings(settings), settings.trusted_proxies, router
    )
    app.add_middleware(inbound_limit)
    app.add_middleware(StartServices(services))
    app.add_middleware(ReadOnlyCors())
    app.add_middleware(QueryStringGuard())
    # `/update/` and `/update` are the same endpoint for clients that add a slash.
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)
    app.add_route("/update", UpdateResource(services, inbound_limit))
    app.add_route("/jobs/{job_id}", JobResource(services))
    app.add_route("/stats_history", StatsHistoryResource(services))
    app.add_route("/hiscores", HiscoresResource(services))
    app.add_route("/peak", PeakResource(services))
    app.add_route("/bestplays", BestPlaysResource(services))
    app.add_route("/health", HealthResource(services))
    app.add_route("/ping", PingResource())
    app.add_route("/metrics", MetricsResource(services))
    # Last: the OpenAPI document is generated from the routes added above.
    spec.register(app)
    return app
