"""The shim with its per-user reads on the thread pool instead of the event loop.

Not a way to run the service: the alternative `bench.update_burst` measures against the
default (`create_app(..., reads_on_loop=False)`), served as `bench.asgi_pooled_reads:app`.
"""

from __future__ import annotations

from api_shim.app import create_app
from osutrack.settings import load_settings

app = create_app(load_settings(), reads_on_loop=False)
