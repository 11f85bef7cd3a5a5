"""Schema conformance: schemathesis drives the ASGI app (tiny pipeline) from /openapi.json.

At least 500 generated cases, valid and invalid, across every operation: no 5xx, every
status code and content type documented, every body matching its response schema, and
invalid input (per the served schema) rejected with a 4xx. Derandomized so CI is repeatable.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.settings import Settings
from tlgan.pipeline import Pipeline

CHECKS: list[Any] = [not_a_server_error, status_code_conformance, content_type_conformance,
                     response_headers_conformance, response_schema_conformance]
MIN_CASES = 500
EXAMPLES = {GenerationMode.POSITIVE: 90, GenerationMode.NEGATIVE: 90}


def _run(op: Any, mode: GenerationMode, n: int, checks: list[Any]) -> int:
    """Run up to ``n`` generated cases of ``op``; return how many ran."""
    ran = 0

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=n, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        nonlocal ran
        ran += 1
        case.call_and_validate(checks=checks)

    run()
    return ran


@pytest.mark.slow
def test_openapi_conformance(tiny_pipeline: Pipeline) -> None:
    # Small limits keep each case fast; the served schema states them, so cases respect them.
    app = create_app(Settings(max_count=4, max_size=64), pipeline=tiny_pipeline)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /generate", "POST /edit", "POST /interpolate", "GET /axes",
            "GET /generators", "GET /healthz", "GET /readyz", "GET /stats"} <= labels
    # The schema describes the loaded models (latent length, axis names).
    served = app.openapi()["components"]["schemas"]["EditRequest"]["properties"]
    assert served["latent"]["minItems"] == served["latent"]["maxItems"] == 16

    counts: dict[str, int] = {}
    for op in operations:
        has_body = op.method.upper() == "POST"
        for mode, n in EXAMPLES.items():
            if mode is GenerationMode.NEGATIVE and not has_body:
                continue
            checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE
                               else [])

            counts[f"{op.label} {mode.value}"] = _run(op, mode, n, checks)
    total = sum(counts.values())
    assert total >= MIN_CASES, counts
    assert app.state.server_errors == 0
