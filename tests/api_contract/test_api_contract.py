"""Schemathesis against the app's own OpenAPI schema, in-process (ASGI), as an administrator:
no request the schema allows may answer 5xx.

Operations are driven one by one with a small hypothesis budget each (the suite's time limit);
logout is excluded (it would revoke the token every later case uses).
"""

from __future__ import annotations

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings

EXAMPLES_PER_OPERATION = 6
SKIP = {("POST", "/api/v1/auth/logout")}


@schemathesis.serializer("application/pdf", "application/octet-stream")
def _binary(_ctx: object, value: object) -> bytes:
    """Upload bodies (dossier documents, evidence) as raw bytes."""
    return value if isinstance(value, bytes) else str(value).encode()


def test_no_server_errors(contract_app: FastAPI, api_schema: schemathesis.BaseSchema) -> None:
    token = contract_app.state.contract_token
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an unparsable operation raises here
        if not operation.path.startswith("/api/") or (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1
        _exercise(operation, headers, failures)
    assert operations >= 40, f"only {operations} API operations in the schema"
    assert not failures, "\n".join(sorted(set(failures))[:30])


def _exercise(operation: schemathesis.APIOperation, headers: dict[str, str], failures: list[str]) -> None:
    @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
            phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
        )  # fmt: skip
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}")

    run()
