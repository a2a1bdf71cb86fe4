"""Raw (not percent-encoded) bytes in the query string, through the real server.

The shim's answers are defined on the latin-1 view of the raw bytes that a WSGI server
gives (PEP 3333): raw UTF-8 is let through as that text, and escapes that are not UTF-8
are a 400. The ASGI server hands the bytes over as they came; `api_shim.middleware.Request`
keeps the same view. (Raw bytes that are not UTF-8 at all granian refuses itself.)
"""

from __future__ import annotations

import socket

import orjson
import pytest

pytestmark = pytest.mark.integration

TIMEOUT_SECONDS = 30


def _get(api_url: str, target: bytes) -> tuple[int, object]:
    host, port = api_url.removeprefix("http://").split(":")
    request = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_SECONDS) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


def test_raw_utf8_in_the_query_string_is_let_through(api_url: str) -> None:
    assert _get(api_url, b"/ping?note=\xc3\xa9") == (200, {"status": "alive"})
    # The name is looked up as the latin-1 text of its bytes, which nobody has.
    assert _get(api_url, b"/hiscores?user=\xc3\xa9&mode=0&userMode=username") == (
        404,
        {"error": "User not found"},
    )


def test_escapes_that_are_not_utf8_are_refused(api_url: str) -> None:
    assert _get(api_url, b"/peak?user=%ff&mode=0") == (
        400,
        {"error": "Query string is not valid UTF-8"},
    )
