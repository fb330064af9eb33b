"""The gateway's management API over httpx: list, create, update, delete.

The personal API token goes as the raw ``Authorization`` value (no ``Bearer``), and
only there: never in a URL, a message or a log line (an error body that echoes it is
redacted before anyone sees it). Redirects are not followed: a redirect would carry the
token to wherever it points. Resources live under ``/clients/{clientId}/``; the API
reference spells it ``/api/clients/...``, so a 404 on the first request tries that
prefix, and the one that answered is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rrdev.core.errors import NetworkError, RrdevError

if TYPE_CHECKING:
    # Imported when a client is made: ``import httpx`` imports its own CLI and with it
    # rich, which the engine layers must not pull in (see clients/jwks.py).
    import httpx

DEFAULT_API = "https://api.requestrocket.com"
API_ENV = "RRDEV_GATEWAY_API"
TOKEN_ENV = "RRDEV_GATEWAY_TOKEN"
PREFIXES = ("/clients", "/api/clients")
TIMEOUT_SECONDS = 30.0


class GatewayAuthError(RrdevError):
    """The API refused the token (401/403): a configuration problem, exit 3."""

    exit_code = 3


class GatewayApiError(NetworkError):
    """The API answered an error, garbage, or nothing (exit 4)."""

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class GatewayApi:
    """One client of one account (``client_id``) of the gateway's API."""

    def __init__(
        self,
        base_url: str,
        token: str,
        client_id: str,
        *,
        http: httpx.Client | None = None,
    ) -> None:
        if not token.strip():
            raise GatewayAuthError(f"{TOKEN_ENV} is empty", _token_hint())
        self._base = base_url.rstrip("/")
        self._token = token
        self._client_id = client_id
        self._http = http or _new_client()
        self._prefix: str | None = None

    def close(self) -> None:
        self._http.close()

    # ---------------------------------------------------------------- calls

    def list(self, collection: str) -> list[dict[str, Any]]:
        """``GET .../{collection}``, unwrapped from ``{"<collection>": [...], ...}``."""
        return _unwrap_list(self._call("GET", collection), collection)

    def list_rules(self, collection: str, object_id: str) -> list[dict[str, Any]]:
        return _unwrap_list(self._call("GET", f"{collection}/{object_id}/rules"), "rules")

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST .../{path}``: the created object (unwrapped when the API wraps it)."""
        return _unwrap_object(self._call("POST", path, body))

    def update(self, collection: str, object_id: str, fields: Mapping[str, Any]) -> None:
        """``PATCH``: only the fields that change (an assumption: the public docs do
        not say whether the API updates with PUT or PATCH)."""
        self._call("PATCH", f"{collection}/{object_id}", fields)

    def delete_rule(self, collection: str, object_id: str, rule_id: str) -> None:
        self._call("DELETE", f"{collection}/{object_id}/rules/{rule_id}")

    # --------------------------------------------------------------- plumbing

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        if self._prefix is None:
            return self._first_call(method, path, body)
        return self._checked(self._send(method, self._prefix, path, body), method, path)

    def _first_call(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        for prefix in PREFIXES:
            response = self._send(method, prefix, path, body)
            if response.status_code != 404:
                self._prefix = prefix
                return self._checked(response, method, path)
        raise GatewayApiError(
            f"the gateway API at {self._base} knows no client {self._client_id!r} "
            f"(404 under both {' and '.join(p + '/' for p in PREFIXES)})",
            "check --client-id and --api (or RRDEV_GATEWAY_API)",
            404,
        )

    def _send(
        self, method: str, prefix: str, path: str, body: Mapping[str, Any] | None
    ) -> httpx.Response:
        url = f"{self._base}{prefix}/{self._client_id}/{path}"
        headers = {"Authorization": self._token, "Accept": "application/json"}
        import httpx

        try:
            return self._http.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise GatewayApiError(
                f"cannot reach the gateway API at {self._base}: {type(exc).__name__}",
                "check the network and --api (or RRDEV_GATEWAY_API)",
            ) from None

    def _checked(self, response: httpx.Response, method: str, path: str) -> Any:
        status = response.status_code
        what = f"{method} {self._prefix}/{self._client_id}/{path}"
        if status in (401, 403):
            raise GatewayAuthError(
                f"the gateway API refused the token ({status}) for {what}", _token_hint()
            )
        if 300 <= status < 400:
            raise GatewayApiError(
                f"the gateway API answered {what} with a redirect ({status}): not followed, "
                "it would carry the token elsewhere",
                "point --api at the API's own address",
                status,
            )
        if status >= 400:
            raise GatewayApiError(f"{what} failed: {status} {self._message(response)}", "", status)
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise GatewayApiError(f"{what}: the answer is not JSON", "", status) from None

    def _message(self, response: httpx.Response) -> str:
        """The API's own message, short, with the token cut out if it echoed it."""
        try:
            data = response.json()
            text = str(data.get("message", "")) if isinstance(data, dict) else ""
        except ValueError:
            text = response.text
        return redact_token(text[:200], self._token)


def _new_client() -> httpx.Client:
    import httpx

    # Never follow a redirect: httpx would send the token on to wherever it points.
    return httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=True)


def redact_token(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


def _token_hint() -> str:
    return (
        f"set {TOKEN_ENV} (or the variable --token-env names) to a personal API token "
        "from the gateway's console; it is sent as the raw Authorization value"
    )


def _unwrap_list(answer: Any, name: str) -> list[dict[str, Any]]:
    items = answer.get(name) if isinstance(answer, dict) else answer
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise GatewayApiError(f"the gateway API's {name} list is not a list of objects")
    return items


def _unwrap_object(answer: Any) -> dict[str, Any]:
    """``{"target": {...}, "message": "Success"}`` or the object itself."""
    if not isinstance(answer, dict):
        raise GatewayApiError("the gateway API answered a create with something not an object")
    inner = [v for k, v in answer.items() if k != "message" and isinstance(v, dict)]
    return inner[0] if len(inner) == 1 and len(answer) <= 2 else answer
