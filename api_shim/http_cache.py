"""HTTP caching of the read endpoints: weak ETags, 304 on If-None-Match, Cache-Control.

A per-player ETag names a body without building it: the read version of the player's
rows (`read_versions`, moved on by every write in the writing transaction) with the
request's normalized parameters, so answering a matching If-None-Match costs that one
lookup. A /bestplays ETag is the rebuild stamp with a hash of the body's bytes: a window's
exact parts read hiscores as they are, so two processes may answer one window
differently between two rebuilds; each process keeps its bodies until the next rebuild,
so a repeated request hashes bytes it already holds. Equal tags always mean equal bytes.
ETags are weak (`W/`), as Express sent them.

Per-player answers are `no-cache`: a cache keeps them but asks again every time, so a
client sees an update at once and pays a 304 when nothing changed. /bestplays answers may
be used until the mode's next rebuild is due (`max-age`). Errors carry neither header.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import falcon

CONTENT_TYPE = "application/json; charset=utf-8"
PER_PLAYER = "no-cache"


def etag(version: int | str, *parameters: object) -> str:
    """The weak ETag of a body: its data version and the parameters that select it."""
    digest = hashlib.blake2b(repr(parameters).encode(), digest_size=8).hexdigest()
    return f'W/"{version}-{digest}"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def matches(if_none_match: str | None, tag: str | None) -> bool:
    """True when the If-None-Match header names `tag` (weak comparison) or is `*`; never
    for an answer without a tag."""
    if not if_none_match or tag is None:
        return False
    if if_none_match.strip() == "*":
        return True
    ours = _opaque(tag)
    return any(_opaque(listed) == ours for listed in if_none_match.split(","))


@dataclass(frozen=True)
class Validator:
    """The caching headers of an answer: its ETag (None: none) and Cache-Control;
    `version`, when the ETag waits for the body (`naming`)."""

    etag: str | None
    cache_control: str
    version: str | None = None

    def not_modified(self, req: falcon.Request, resp: falcon.Response) -> bool:
        """Answer 304 (no body) and return True when the client holds this answer."""
        if not matches(req.get_header("If-None-Match"), self.etag):
            return False
        resp.status = falcon.HTTP_304
        resp.media = None
        # Set, if empty, so the response is sent as is (no serializer, no validation).
        resp.data = b""
        self._headers(resp)
        return True

    def send(self, resp: falcon.Response, body: bytes) -> None:
        """Answer 200 with `body` (already JSON) and the caching headers."""
        resp.status = falcon.HTTP_200
        resp.content_type = CONTENT_TYPE
        resp.media = None
        resp.data = body
        self._headers(resp)

    def naming(self, body: bytes) -> Validator:
        """This validator with the ETag of `body` under its version."""
        if self.version is None:
            return self
        digest = hashlib.blake2b(body, digest_size=8).hexdigest()
        return Validator(f'W/"{self.version}-{digest}"', self.cache_control)

    def _headers(self, resp: falcon.Response) -> None:
        if self.etag is not None:
            resp.set_header("ETag", self.etag)
        resp.set_header("Cache-Control", self.cache_control)


@dataclass(frozen=True)
class CachedBody:
    """A per-player answer: its validator, and its body unless the client holds it."""

    validator: Validator
    body: bytes | None

    def respond(self, req: falcon.Request, resp: falcon.Response) -> None:
        """304 when the client holds the answer (always so without a body), else 200."""
        if self.validator.not_modified(req, resp):
            return
        assert self.body is not None, "a body is only left out for a matching If-None-Match"
        self.validator.send(resp, self.body)


# Before a mode's first rebuild its /bestplays answers come from hiscores as they change.
UNBUILT_BESTPLAYS = Validator(None, PER_PLAYER)


def bestplays_validator(
    refreshed_at: datetime | None, refresh_seconds: int, now: datetime
) -> Validator:
    """The validator of a /bestplays answer before its body is known (`naming` adds the
    ETag): the mode's rebuild stamp (None: never rebuilt), fresh until the next rebuild
    is due."""
    if refreshed_at is None:
        return UNBUILT_BESTPLAYS
    due = refreshed_at + timedelta(seconds=refresh_seconds)
    fresh_seconds = max(0, int((due - now).total_seconds()))
    stamp_micros = round(refreshed_at.timestamp() * 1_000_000)
    return Validator(None, f"public, max-age={fresh_seconds}", version=str(stamp_micros))
