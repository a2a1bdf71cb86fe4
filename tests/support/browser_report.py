"""The browser test's report: its screenshot when it ran, a banner when it could not.

A plugin of tests/conftest.py rather than a conftest of tests/browser: under xdist only
the controller writes the terminal summary, and it loads no conftest below tests/.
"""

from __future__ import annotations

import pytest

BROWSER_TEST = "test_docs_offline.py"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show where the screenshot is, or shout that the browser test was skipped.

    A skipped test is one line among many in `-ra`; this one proves that /docs works
    offline, so its absence must be hard to miss.
    """
    for report in terminalreporter.stats.get("skipped", []):
        if BROWSER_TEST in report.nodeid:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            terminalreporter.write_sep(
                "!", "THE /docs BROWSER TEST WAS SKIPPED", red=True, bold=True
            )
            terminalreporter.write_line(f"{report.nodeid}: {reason}", red=True, bold=True)
    for report in terminalreporter.stats.get("passed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "screenshot":
                terminalreporter.write_line(f"/docs in headless Chromium, offline: {value}")
