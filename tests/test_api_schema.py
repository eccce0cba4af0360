"""Property-based requests against the OpenAPI schema: no input gets a 500."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from perparb.api.app import ApiContext, create_app
from perparb.config import ApiSettings
from test_api import make_engine

app = create_app(ApiContext(make_engine(), ApiSettings(token="tok")))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:200])
    if response.status_code >= 400:
        ctype = response.headers.get("content-type")
        ctype = ctype[0] if isinstance(ctype, list) else ctype
        assert ctype and ctype.startswith("application/json"), ctype
