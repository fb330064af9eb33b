"""The architecture STYLE.md promises: a pure engine, thin front ends, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ENGINE_MODULES = [
    "rrdev.core.errors",
    "rrdev.core.records",
    "rrdev.core.redact",
    "rrdev.core.model",
    "rrdev.core.paths",
    "rrdev.core.netaddr",
    "rrdev.servers.asgi",
    "rrdev.core.profile",
    "rrdev.core.rules",
    "rrdev.core.tokens",
    "rrdev.clients.backend_token",
    "rrdev.core.keyset",
    "rrdev.clients.jwks",
    "rrdev.core.verify",
    "rrdev.core.explain",
    "rrdev.servers.proxy",
    "rrdev.servers.runner",
    "rrdev.checks.engine",
]
FRONT_END_ONLY = ("textual", "typer", "rich")


def imported_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_module_imports_no_front_end(module: str) -> None:
    loaded = imported_after(f"import {module}")
    leaked = sorted(m for m in loaded if m.split(".")[0] in FRONT_END_ONLY)
    assert leaked == [], f"{module} pulls in {leaked[:5]}"


def test_cli_explain_does_not_import_textual_or_uvicorn() -> None:
    code = (
        "from typer.testing import CliRunner\n"
        "from rrdev.cli.app import app\n"
        "CliRunner().invoke(app, ['explain', '--help'])\n"
    )
    loaded = imported_after(code)
    assert "rrdev.cli.app" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("textual", "uvicorn", "aiohttp"))
    assert heavy == []
