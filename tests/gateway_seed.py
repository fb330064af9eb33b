"""The seed's create payloads (seed/000_3a34567f3671e13e.txt), field for field, in the
order the guide creates them. IDs are the guide's placeholders and the target
credential's secret is the guide's example value: tests compare modulo those two."""

from __future__ import annotations

from typing import Any

SEED_TARGET: dict[str, Any] = {
    "targetName": "my-backend-api",
    "targetBaseURL": "https://api.myapp.com",
    "targetTestPath": "/health",
    "targetRegion": "us-east-1",
}
SEED_TARGET_CREDENTIAL: dict[str, Any] = {
    "credentialType": "target",
    "credentialAuthType": "bearer",
    "credentialName": "backend-service-token",
    "credentialRegion": "us-east-1",
    "credentialSecret": {"token": "internal_service_token_xxxxxxxx"},
}
SEED_PROXY_CREDENTIAL: dict[str, Any] = {
    "credentialType": "proxy",
    "credentialAuthType": "jwtVerify",
    "credentialName": "auth0-jwt-verify",
    "credentialRegion": "us-east-1",
    "credentialSecret": {
        "jwksUri": "https://YOUR_TENANT.us.auth0.com/.well-known/jwks.json",
        "audience": "https://api.myapp.com",
        "issuer": "https://YOUR_TENANT.us.auth0.com/",
    },
}
SEED_PROXY: dict[str, Any] = {
    "proxyName": "my-api-auth0-protected",
    "proxyRegion": "us-east-1",
    "proxyProxyCredentialId": "<auth0-jwt-verify-id>",
    "proxyTargetId": "<my-backend-api-target-id>",
    "proxyTargetCredentialId": "<backend-service-token-id>",
    "proxyDefaultRuleEffect": "deny",
    "proxyAlias": "my-api",
}
SEED_RULES: list[dict[str, Any]] = [
    {
        "effect": "allow",
        "methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
        "path": {"path": {"pattern": ".*"}, "presence": "must_exist"},
        "priority": 1,
        "notes": "Allow all authenticated requests (JWT verified by proxy credential)",
    },
    {
        "effect": "allow",
        "methods": ["GET"],
        "path": {
            "path": {"pattern": "^/api/v1/(users|products|orders)(/.*)?$"},
            "presence": "must_exist",
        },
        "priority": 10,
        "notes": "Read access to users, products, and orders",
    },
    {
        "effect": "deny",
        "methods": ["DELETE"],
        "path": {"path": {"pattern": ".*"}, "presence": "must_exist"},
        "token": [
            {
                "claim": {"pattern": "^scope$"},
                "value": {"pattern": "delete:resources"},
                "presence": "must_absent",
            }
        ],
        "notes": "Scope gate: DELETE operations require delete:resources scope",
    },
]
#: The seed's ID placeholders -> the export's symbolic references.
SEED_REFS = {
    "<auth0-jwt-verify-id>": {"$ref": "proxy_credential"},
    "<my-backend-api-target-id>": {"$ref": "target"},
    "<backend-service-token-id>": {"$ref": "target_credential"},
}
