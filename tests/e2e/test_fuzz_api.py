"""Property-based: valid and invalid requests generated from the API's own OpenAPI
description, sent through the gateway, never get a 5xx, a non-JSON error or a hang."""

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

pytestmark = pytest.mark.stack
# Operations that need a token answer 401 to generated requests; fuzzing them adds nothing.
SKIP = ("/admin",)


def operations(lab):
    schema = schemathesis.openapi.from_url(lab.url("GATEWAY_PORT", "/openapi.json"))
    return [op.ok() for op in schema.get_all_operations()
            if not op.ok().path.startswith(SKIP)]


def test_generated_requests_never_break_the_api(lab):
    ops = operations(lab)
    assert {op.path for op in ops} >= {"/checkout", "/products", "/products/{product_id}",
                                       "/orders/{order_id}", "/health"}
    for operation, mode in itertools.product(ops, GenerationMode):
        raw = operation.definition.raw
        if mode is GenerationMode.NEGATIVE and not (raw.get("parameters") or
                                                     raw.get("requestBody")):
            continue  # nothing to get wrong (GET /health takes no input)
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def property_holds(case):
            response = case.call_and_validate(checks=[not_a_server_error], timeout=10)
            if response.status_code >= 400:
                content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
                assert content_type[0].startswith("application/json")
                assert {"error", "detail", "correlation_id"} <= set(response.json())

        property_holds()
