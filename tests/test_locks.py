"""The hashed lock files hold every pin of pyproject.toml: an edited pin without `make lock`
fails here, not later in a Docker build or on a fresh machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# `name==version \` at the start of a line; the hashes follow on the next lines.
LOCKED = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", re.MULTILINE)


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for line in requirements:
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{line}: pyproject pins exact versions"
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def _locked(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    assert "--hash=sha256:" in text
    return {canonicalize_name(name): version for name, version in LOCKED.findall(text)}


RUNTIME = _pins(PROJECT["dependencies"])
DEV = RUNTIME | _pins(
    [line for extra in ("dev", "local") for line in PROJECT["optional-dependencies"][extra]]
)


@pytest.mark.parametrize(
    ("lock", "pins"), [("requirements.lock", RUNTIME), ("requirements-dev.lock", DEV)]
)
def test_the_lock_holds_every_pin_of_pyproject(lock: str, pins: dict[str, str]) -> None:
    locked = _locked(lock)
    assert {name: locked.get(name) for name in pins} == pins, "run `make lock`"


def test_the_dev_lock_keeps_the_runtime_versions() -> None:
    runtime, dev = _locked("requirements.lock"), _locked("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime, "run `make lock`"
