"""Falcon application of the osu! API simulator."""

from __future__ import annotations

import falcon

from simulator import control, v1, v2
from simulator.config import SimConfig
from simulator.middleware import UpstreamMiddleware
from simulator.oauth import OAuthToken
from simulator.responses import JsonError, handle_json_error
from simulator.runtime import Simulator


def build(config: SimConfig) -> tuple[falcon.App, Simulator]:
    """The WSGI app and the runtime behind it (the server needs both)."""
    sim = Simulator(config)
    app = falcon.App(middleware=[UpstreamMiddleware(sim)])
    app.add_error_handler(JsonError, handle_json_error)
    app.req_options.strip_url_path_trailing_slash = True

    app.add_route("/oauth/token", OAuthToken(sim))
    user = v2.User(sim)
    app.add_route("/api/v2/users", v2.Users(sim))
    app.add_route("/api/v2/users/{user}", user)
    app.add_route("/api/v2/users/{user}/{mode}", user)
    app.add_route("/api/v2/users/{user}/scores/best", v2.BestScores(sim))
    app.add_route("/api/get_user", v1.GetUser(sim))
    app.add_route("/api/get_user_best", v1.GetUserBest(sim))

    app.add_route("/_sim/users/{user_id:int}/{mode:int}", control.UserTruth(sim))
    app.add_route("/_sim/users/{user_id:int}/advance", control.AdvanceUser(sim))
    app.add_route("/_sim/users/{user_id:int}/restrict", control.Restriction(sim, restricted=True))
    app.add_route(
        "/_sim/users/{user_id:int}/unrestrict", control.Restriction(sim, restricted=False)
    )
    app.add_route("/_sim/users/{user_id:int}/pp_rework", control.PpRework(sim))
    app.add_route("/_sim/advance", control.AdvanceAll(sim))
    app.add_route("/_sim/faults", control.Faults(sim))
    app.add_route("/_sim/latency", control.Latency(sim))
    app.add_route("/_sim/requests", control.Requests(sim))
    app.add_route("/_sim/stats", control.Stats(sim))
    app.add_route("/_sim/reset", control.Reset(sim))
    return app, sim


def create_app(config: SimConfig | None = None) -> falcon.App:
    """The simulator as a Falcon app, e.g. for ``falcon.testing.TestClient``."""
    return build(config or SimConfig())[0]
