"""Schemathesis checks of trade2026's API contract, loaded by tests/contract.rs (SCHEMATHESIS_HOOKS).

`valid_requests_are_accepted` replaces schemathesis's `positive_data_acceptance`: a request the
document allows must never be refused as malformed (400) or invalid (422), except with an error
code that the operation lists in `x-state-errors`: refusals that depend on the platform's state
and data, not on the request's shape (a risk limit, a symbol without market data, a portfolio
with too little price history). Every other status the built-in check accepts is accepted here.
"""

import schemathesis
from schemathesis.specs.openapi.checks import is_unexpected_http_status_case

ACCEPTED = {401, 403, 404, 409, 429}


@schemathesis.check
def valid_requests_are_accepted(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or is_unexpected_http_status_case(case):
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in ACCEPTED:
        return None
    allowed = case.operation.definition.raw.get("x-state-errors", [])
    try:
        code = response.json()["error"]["code"]
    except Exception:  # not the error shape: reported as such
        code = None
    if code in allowed:
        return None
    raise AssertionError(
        f"A schema-valid request was refused with {status} {code!r}; "
        f"the operation's x-state-errors are {allowed}"
    )
