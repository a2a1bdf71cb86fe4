"""Schema-driven fuzzing: schemathesis reads the published /openapi.json of a running API.

For each documented operation, schemathesis generates requests that match the document
(positive) and requests that break it (negative) and sends them over real HTTP. Checks:

* every answer: no 5xx; the status, content type and body are the documented ones for
  that status (so every 400 is `{"error": ...}`, every 200 has the documented shape);
* negative requests: refused with a 4xx;
* positive requests, where the document is precise enough that "matches the schema" means
  "valid" (GET /peak, and the operator endpoints that take no parameters): answered 2xx.

Elsewhere a schema-valid request can still be refused, because the document is looser
than the rules: `from`/`to` are plain strings (no date format), `wait` has no maximum
(UPDATE_WAIT_MAX_SECONDS is a setting), `job_id` is any string and hiscores' `user` is a
string that must be an id unless `userMode=username`. Those 400s are still checked to be
documented, JSON and `{"error": ...}`.

POST /update is fuzzed too, but every generated `user` is moved into this suite's own id
range and a waiting `wait` is shortened, so the session worker only ever updates players
these tests own, and quickly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
import schemathesis
from fuzz_support import FIRST_FUZZ_USER, HTTP_TIMEOUT_SECONDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from support.processes import ManagedProcess

from api_shim.params import MAX_USER_ID

pytestmark = pytest.mark.integration

# Every operation the document must describe: a new endpoint fails
# test_document_lists_the_fuzzed_operations until it is fuzzed here too.
OPERATIONS = (
    "POST /update",
    "GET /jobs/{job_id}",
    "GET /stats_history",
    "GET /hiscores",
    "GET /peak",
    "GET /bestplays",
    "GET /health",
    "GET /ping",
    "GET /metrics",
)
# Operations with a parameter whose schema can be broken: a path parameter that is "any
# string", or no parameter at all, leaves nothing for a negative case to violate.
NEGATABLE = ("POST /update", "GET /stats_history", "GET /hiscores", "GET /peak", "GET /bestplays")
# Known defects of the document, kept failing (strict) until it is fixed.
# Operations the published document gets wrong, as strict xfails (none known now).
DOCUMENT_BUGS: dict[tuple[str, GenerationMode], str] = {}
RUNS = [
    pytest.param(
        label,
        mode,
        id=f"{label}-{mode.value}",
        marks=[pytest.mark.xfail(strict=True, reason=DOCUMENT_BUGS[label, mode])]
        if (label, mode) in DOCUMENT_BUGS
        else [],
    )
    for label, mode in [(label, GenerationMode.POSITIVE) for label in OPERATIONS]
    + [(label, GenerationMode.NEGATIVE) for label in NEGATABLE]
]
# Where any schema-valid request is a valid request (see the module docstring).
PRECISE = frozenset({"GET /peak", "GET /health", "GET /ping", "GET /metrics"})
# Bounded: each example is one HTTP request; 14 runs x 50 examples stays well under a minute.
EXAMPLES_PER_MODE = 50
# A generated `wait` above this is shortened to it: enough for the worker to finish most
# updates against the simulator, short enough that a few of them cost little.
LONGEST_WAIT_SECONDS = 1.0
FUZZ_USERS = 1000

ALWAYS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def schema(api_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{api_url}/openapi.json", timeout=HTTP_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def http(api_url: str) -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _own_update(case: Case) -> Case:
    """POST /update for a player of this suite's range, waiting at most a moment.

    Only well-formed values are moved: a `user` or `wait` that breaks the schema stays as
    generated, since refusing it is what a negative case tests.
    """
    query = case.query
    if query is None:
        return case
    user = query.get("user")
    if isinstance(user, int) and not isinstance(user, bool) and 1 <= user <= MAX_USER_ID:
        query["user"] = FIRST_FUZZ_USER + user % FUZZ_USERS
    wait = query.get("wait")
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
        query["wait"] = min(wait, LONGEST_WAIT_SECONDS)
    return case


def test_document_lists_the_fuzzed_operations(schema: Any) -> None:
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert labels == set(OPERATIONS)


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    send: Callable[[Case], None],
) -> None:
    strategy = operation.as_strategy(generation_mode=mode)
    if operation.label == "POST /update":
        strategy = strategy.map(_own_update)

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        # The example database would replay old failures against a new document.
        database=None,
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        send(case)

    run()


@pytest.mark.parametrize(("label", "mode"), RUNS)
def test_operation_conforms(
    schema: Any,
    api_url: str,
    http: requests.Session,
    worker_process: ManagedProcess,
    label: str,
    mode: GenerationMode,
) -> None:
    """Generated requests of one operation and mode get documented, non-5xx answers.

    A worker runs so that accepted updates finish (200) instead of all waiting out (202).
    """
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    checks = list(ALWAYS)
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    elif label in PRECISE:
        checks.append(positive_data_acceptance)

    def send(case: Case) -> None:
        case.call_and_validate(
            base_url=api_url, session=http, checks=checks, timeout=HTTP_TIMEOUT_SECONDS
        )

    _fuzz(operation, mode, send)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(job_id=st.text(min_size=1, max_size=60).filter(lambda text: "/" not in text))
def test_any_job_id_is_a_json_404(api_url: str, http: requests.Session, job_id: str) -> None:
    """The path parameter schemathesis can only describe as "a string", fuzzed raw."""
    response = http.get(
        f"{api_url}/jobs/{quote(job_id.encode('utf-8', 'surrogatepass'), safe='')}",
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert response.status_code == 404, response.text
    assert set(response.json()) == {"error"}
