"""A scenario is measured only once it answers as it should: 200 with the backend's body
for the token; 401 without one and with a bad signature where a JWT is checked; and the
backend saw the injected credential (nginx echoes the Authorization it received)."""

from __future__ import annotations

import http.client

from bench.scenarios import Scenario
from bench.world import BACKEND_TOKEN, BODY, PATH, SEEN_HEADER, World

__all__ = ["check", "get"]


def get(port: int, headers: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    """GET /api/v1/products on 127.0.0.1:port: status, body, lower-case headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", PATH, headers=headers)
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        return response.status, body, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def auth_headers(scenario: Scenario, world: World) -> dict[str, str]:
    """What wrk sends: the valid token, for the scenarios that check one."""
    return {"Authorization": f"Bearer {world.token}"} if scenario.jwt else {}


def check(scenario: Scenario, world: World, port: int) -> list[str]:
    """What is wrong with the scenario's answers (an empty list: all is well)."""
    problems = []
    status, body, headers = get(port, auth_headers(scenario, world))
    if status != 200 or body != BODY:
        problems.append(f"with a token: {status} {body[:120]!r}, expected 200 and the body")
    if scenario.injects and headers.get(SEEN_HEADER) != f"Bearer {BACKEND_TOKEN}":
        seen = "something else" if headers.get(SEEN_HEADER) else "nothing"
        problems.append(f"the backend saw {seen} as Authorization, not the injected bearer")
    if scenario.jwt:
        for label, token in (("no token", None), ("a bad signature", world.bad_token)):
            sent = {"Authorization": f"Bearer {token}"} if token else {}
            status, body, _headers = get(port, sent)
            if status != 401:
                problems.append(f"with {label}: {status} {body[:120]!r}, expected 401")
    return problems
