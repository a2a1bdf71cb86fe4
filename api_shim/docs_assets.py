"""The /docs page and the Swagger UI files it loads, all served by the API itself.

The page works on a machine without internet: nothing comes from a CDN. The files are the
Swagger UI distribution that the `swagger-ui-py` package ships (pinned in pyproject.toml);
only its static folder is read, never its framework code, so importing this module loads
nothing of that package. Swagger UI 5 renders OpenAPI 3.1, the version spectree writes.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import falcon

from api_shim.ratelimit import UNLIMITED

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
# Every file the page loads, with its media type; nothing else of the package is served.
ASSET_TYPES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
# The files change only with the pinned package; a day keeps reloads cheap after upgrades.
ASSET_CACHE_CONTROL = "public, max-age=86400"

PAGE_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>osu!track API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="{assets}/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "{spec_url}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // The validator badge would send the document to validator.swagger.io.
  validatorUrl: null
}});
</script>
</body>
</html>
"""


def swagger_ui_dir() -> Path:
    """The folder of Swagger UI files inside the installed `swagger-ui-py` package."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def docs_page(spec_url: str) -> bytes:
    """The HTML of /docs, loading the OpenAPI document from `spec_url`."""
    return PAGE_TEMPLATE.format(assets=ASSETS_PATH, spec_url=spec_url).encode()


@functools.cache
def asset(name: str) -> bytes | None:
    """The content of one served file, read once per process; None for any other name."""
    if name not in ASSET_TYPES:
        return None
    return (swagger_ui_dir() / name).read_bytes()


class DocsPageResource:
    """`GET /docs`."""

    rate_limit = UNLIMITED

    def __init__(self, spec_url: str) -> None:
        self._page = docs_page(spec_url)

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.data = self._page


class DocsAssetResource:
    """`GET /docs/assets/{name}`: one of `ASSET_TYPES`, else 404."""

    rate_limit = UNLIMITED

    async def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        content = asset(name)
        if content is None:
            raise falcon.HTTPNotFound()
        resp.content_type = ASSET_TYPES[name]
        resp.cache_control = [ASSET_CACHE_CONTROL]
        resp.data = content


def add_docs_routes(app: falcon.App, spec_url: str) -> None:
    """Route /docs and its assets on `app`."""
    app.add_route(DOCS_PATH, DocsPageResource(spec_url))
    app.add_route(ASSETS_PATH + "/{name}", DocsAssetResource())
