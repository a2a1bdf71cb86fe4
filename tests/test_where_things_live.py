"""README's "Where things live" map names every module of the service, and only those."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPED_PACKAGES = ("api_shim", "worker", "worker/upstream", "osutrack", "devstack", "simulator")
ENTRY = re.compile(r"^- `(?P<path>[\w/]+\.py)`: (?P<what>\S.*)$")


def _map_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Where things live\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def _mapped() -> dict[str, str]:
    entries = {}
    for line in _map_section().splitlines():
        match = ENTRY.match(line)
        if match:
            entries[match["path"]] = match["what"]
    return entries


def _modules() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for package in MAPPED_PACKAGES
        for path in (ROOT / package).glob("*.py")
        if path.name != "__init__.py"
    }


def test_every_module_has_one_line_and_every_line_a_module() -> None:
    mapped = _mapped()
    modules = _modules()
    assert sorted(modules - mapped.keys()) == [], "modules missing from README's map"
    assert sorted(mapped.keys() - modules) == [], "README's map names modules that do not exist"


def test_each_line_is_listed_once() -> None:
    lines = [line for line in _map_section().splitlines() if ENTRY.match(line)]
    paths = [ENTRY.match(line)["path"] for line in lines]  # type: ignore[index]
    assert len(paths) == len(set(paths))
