"""A fake of the gateway's management API, as documented (issue 15), for tests.

An ASGI app served by a real uvicorn on loopback (``serve_fake_gateway``), so that
``rrdev export/pull/push`` are driven over real HTTP. What it implements:

- the personal API token as the raw ``Authorization`` value (no ``Bearer``): anything
  else is 401;
- resources under ``/clients/{clientId}/`` and ``/api/clients/{clientId}/`` (``prefixes``
  picks which ones answer; the others are 404);
- targets, credentials, proxies: list (wrapped: ``{"targets": [...], "message":
  "Success"}``), create (POST, answered ``{"target": {...}, "message": "Success"}`` with
  a generated ``targetId``), update (PATCH: the fields sent replace those held; an
  assumption, the API reference does not say PUT or PATCH) and delete;
- ``credentialSecret`` write-only: stored, never returned (``secrets`` lets a test look);
- rules under each object: create, list, delete only (no get-one, no update: 405);
- strict payloads: an unknown field, a missing required one or a reference to an object
  that does not exist is a 400, so a payload shaped wrong fails the test;
- ``fail_on_create``: the Nth create (1-based, counted over every kind) answers 500,
  for the failure-midway test;
- hostile behaviours for the attack tests: ``echo_authorization`` puts the caller's
  Authorization value in error messages, ``redirect_to`` answers every call with a 307
  to that URL.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

KNOWN_FIELDS = {
    "targets": {
        *("targetName", "targetBaseURL", "targetTestPath", "targetRegion"),
        "targetDefaultRuleEffect",
    },
    "credentials": {
        *("credentialType", "credentialAuthType", "credentialName", "credentialRegion"),
        *("credentialSecret", "credentialDefaultRuleEffect"),
    },
    "proxies": {
        *("proxyName", "proxyRegion", "proxyProxyCredentialId", "proxyTargetId"),
        *("proxyTargetCredentialId", "proxyDefaultRuleEffect", "proxyAlias", "proxyActive"),
        "proxyAdditionalHeaders",
    },
    "rules": {"effect", "methods", "path", "headers", "query", "token", "priority", "notes"},
}
REQUIRED = {
    "targets": ("targetName", "targetBaseURL"),
    "credentials": ("credentialType", "credentialAuthType", "credentialName"),
    "proxies": ("proxyName", "proxyTargetId", "proxyProxyCredentialId"),
    "rules": ("effect",),
}
ID_FIELDS = {"targets": "targetId", "credentials": "credentialId", "proxies": "proxyId"}
SINGULAR = {"targets": "target", "credentials": "credential", "proxies": "proxy", "rules": "rule"}


@dataclass
class FakeGateway:
    token: str = "rr_pat_test_token_0123456789"
    clients: tuple[str, ...] = ("c1",)
    prefixes: tuple[str, ...] = ("/clients", "/api/clients")
    fail_on_create: int | None = None
    echo_authorization: bool = False
    redirect_to: str | None = None
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {"targets": {}, "credentials": {}, "proxies": {}}
    )
    rules: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    creates: int = 0
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization")
        self.requests.append((scope["method"], scope["path"], auth))
        status, answer = self.handle(scope["method"], scope["path"], auth, body)
        response_headers = [(b"content-type", b"application/json")]
        if self.redirect_to is not None:
            status, answer = 307, {"message": "moved"}
            response_headers.append((b"location", self.redirect_to.encode()))
        elif status >= 400 and self.echo_authorization:
            answer = {"message": f"{answer['message']} (Authorization: {auth})"}
        payload = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    # ------------------------------------------------------------- routing

    def handle(self, method: str, path: str, auth: str | None, raw: bytes) -> tuple[int, Any]:
        if auth != self.token:
            return 401, {"message": "Unauthorized"}
        rest = self._strip_prefix(path)
        if rest is None:
            return 404, {"message": "Not Found"}
        parts = [p for p in rest.split("/") if p]
        if not parts or parts[0] not in self.clients:
            return 404, {"message": "client not found"}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"message": "body is not JSON"}
        return self._route(method, parts[1:], body)

    def _strip_prefix(self, path: str) -> str | None:
        for prefix in sorted(self.prefixes, key=len, reverse=True):
            if path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return None

    def _route(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        if len(parts) >= 3 and parts[2] == "rules":
            return self._rules(method, parts[0], parts[1], parts[3:], body)
        if not parts or parts[0] not in self.objects:
            return 404, {"message": "Not Found"}
        collection = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return 200, {collection: self._listed(collection), "message": "Success"}
            if method == "POST":
                return self._create(collection, body)
        elif len(parts) == 2:
            return self._one(method, collection, parts[1], body)
        return 405, {"message": "Method Not Allowed"}

    def _listed(self, collection: str) -> list[dict[str, Any]]:
        return [self._public(collection, o) for o in self.objects[collection].values()]

    def _public(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k != "credentialSecret"}

    def _create(self, collection: str, body: Any) -> tuple[int, Any]:
        problem = self._invalid(collection, body, partial=False)
        if problem:
            return 400, {"message": problem}
        self.creates += 1
        if self.fail_on_create == self.creates:
            return 500, {"message": "Internal Server Error"}
        ident = f"{SINGULAR[collection]}-{next(self._ids)}"
        stored = {ID_FIELDS[collection]: ident, **body}
        if "credentialSecret" in stored:
            self.secrets[ident] = stored.pop("credentialSecret")
        self.objects[collection][ident] = stored
        return 201, {SINGULAR[collection]: self._public(collection, stored), "message": "Success"}

    def _one(self, method: str, collection: str, ident: str, body: Any) -> tuple[int, Any]:
        held = self.objects[collection].get(ident)
        if held is None:
            return 404, {"message": f"{SINGULAR[collection]} not found"}
        if method == "GET":
            return 200, {SINGULAR[collection]: self._public(collection, held), "message": "Success"}
        if method == "PATCH":
            problem = self._invalid(collection, body, partial=True)
            if problem:
                return 400, {"message": problem}
            changes = dict(body)
            if "credentialSecret" in changes:
                self.secrets[ident] = changes.pop("credentialSecret")
            held.update(changes)
            return 200, {SINGULAR[collection]: self._public(collection, held), "message": "Success"}
        if method == "DELETE":
            del self.objects[collection][ident]
            return 200, {"message": "Success"}
        return 405, {"message": "Method Not Allowed"}

    def _rules(
        self, method: str, collection: str, ident: str, rest: list[str], body: Any
    ) -> tuple[int, Any]:
        if collection not in self.objects or ident not in self.objects[collection]:
            return 404, {"message": "Not Found"}
        held = self.rules.setdefault((collection, ident), {})
        if not rest and method == "GET":
            return 200, {"rules": list(held.values()), "message": "Success"}
        if not rest and method == "POST":
            problem = self._invalid("rules", body, partial=False)
            if problem:
                return 400, {"message": problem}
            self.creates += 1
            if self.fail_on_create == self.creates:
                return 500, {"message": "Internal Server Error"}
            rule = {"ruleId": f"rule-{next(self._ids)}", **body}
            held[rule["ruleId"]] = rule
            return 201, {"rule": rule, "message": "Success"}
        if len(rest) == 1 and method == "DELETE":
            if held.pop(rest[0], None) is None:
                return 404, {"message": "rule not found"}
            return 200, {"message": "Success"}
        return 405, {"message": "rules have create, list and delete only"}

    def _invalid(self, collection: str, body: Any, *, partial: bool) -> str | None:
        if not isinstance(body, dict):
            return "expected a JSON object"
        unknown = set(body) - KNOWN_FIELDS[collection]
        if unknown:
            return f"unknown fields: {sorted(unknown)}"
        if not partial:
            missing = [f for f in REQUIRED[collection] if f not in body]
            if missing:
                return f"missing fields: {missing}"
        return self._bad_reference(body)

    def _bad_reference(self, body: dict[str, Any]) -> str | None:
        refs = {
            "proxyTargetId": "targets",
            "proxyTargetCredentialId": "credentials",
            "proxyProxyCredentialId": "credentials",
        }
        for name, collection in refs.items():
            if name in body and body[name] not in self.objects[collection]:
                return f"{name}: no such {SINGULAR[collection]} {body[name]!r}"
        return None

    # ------------------------------------------------------------ test views

    def rules_of(self, collection: str, name_field: str, name: str) -> list[dict[str, Any]]:
        ident = next(i for i, o in self.objects[collection].items() if o[name_field] == name)
        return list(self.rules.get((collection, ident), {}).values())


@contextmanager
def serve_fake_gateway(fake: FakeGateway) -> Iterator[str]:
    """Serve ``fake`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields its URL."""
    config = uvicorn.Config(fake, host="127.0.0.1", port=0, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the fake gateway did not start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


__all__ = ["FakeGateway", "serve_fake_gateway"]
