"""Bad input at scale: schemathesis generates requests for every operation of the project's own
OpenAPI (data that fits the schema and data that does not), each sent with the admin token, the
ingest token and none; no response may be a 5xx, and every response must match the documented
schema (status code and body)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import ADMIN, INGEST

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES = 12


def test_every_operation_fuzzed(app, client, db):
    # `client` ran the app's lifespan (the pool is open); schemathesis drives the ASGI app.
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 10
    failures: list[str] = []
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                      derandomize=True, database=None)
            def run(case):
                for token in (ADMIN, INGEST, None):
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    response = case.call(headers=headers)
                    case.validate_response(response, checks=CHECKS)

            try:
                run()
            except KeyboardInterrupt:
                raise
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # an operation with nothing to make invalid
            except BaseException as exc:  # noqa: BLE001 - collect all operations' failures, then report them together
                failures.append(f"{op.method.upper()} {op.path} [{mode}]: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
