"""/docs works with no network but loopback: a real browser renders every endpoint.

The API and headless Chromium run together in a new network namespace whose only
interface is its loopback (tests/support/offline_docs.py), so the page can only use what
the API itself serves. The rendered page must list exactly the operations of the API's
own /openapi.json; the screenshot is kept in the test's tmp dir and named in the summary.
Skipped, with a banner at the end of the run, when Chromium (Debian's `chromium`, which
.ci/run installs) or network namespaces are not available.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
HELPER = Path(__file__).parents[1] / "support" / "offline_docs.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Operations(HTMLParser):
    """(METHOD, path) of every operation Swagger UI rendered, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: list[str] = []
        self.paths: list[str] = []
        self._in_method = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if "opblock-summary-method" in classes:
            self._in_method = True
        if "opblock-summary-path" in classes:
            self.paths.append(dict(attrs).get("data-path") or "")

    def handle_data(self, data: str) -> None:
        if self._in_method:
            self.methods.append(data.strip())
            self._in_method = False


def _chromium() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def _network_namespace() -> list[str] | None:
    """The command prefix that runs a program in a new network namespace, if allowed."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    # Root can make one directly; anyone else through a user namespace.
    extra = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    prefix = [unshare, *extra, "--net"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if probe.returncode == 0 else None


def test_docs_render_every_endpoint_offline(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    prefix = _network_namespace()
    if prefix is None:
        pytest.skip("cannot create a network namespace here (unshare --net)")
    done = subprocess.run(
        [*prefix, sys.executable, str(HELPER), str(tmp_path), binary],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    screenshot = tmp_path / "docs.png"
    record_property("screenshot", str(screenshot))
    print(f"screenshot: {screenshot}")

    document = json.loads((tmp_path / "openapi.json").read_text())
    expected = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    ]
    assert expected
    page = Operations()
    page.feed((tmp_path / "dom.html").read_text())
    assert len(page.methods) == len(page.paths)
    assert sorted(zip(page.methods, page.paths, strict=True)) == sorted(expected)
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
