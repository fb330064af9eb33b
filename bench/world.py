"""What every scenario shares: a work folder, an RSA keyset and its JWKS, the tokens
(valid, and one with a bad signature), and nginx as the backend (a 90-byte JSON answer
that echoes the Authorization it received in a response header, and the JWKS for the
peers that fetch it over HTTP)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.prepare import find_nginx
from bench.procs import Server, free_port

ROOT = Path(__file__).resolve().parent.parent
SEED_PROFILE = ROOT / "profiles" / "auth0.toml"
#: The backend's answer: 90 bytes of JSON, as in issue 12's measurements.
BODY = '{"ok":true,"service":"bench-backend","items":[1,2,3],"note":"a small JSON answer of 90 B"}'
#: The credential each proxy must inject for the backend (never a real secret).
BACKEND_TOKEN = "bench-service-token"
#: The response header in which nginx echoes the Authorization it received.
SEEN_HEADER = "x-bench-authorization"
PATH = "/api/v1/products"

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {work}/nginx-tmp/body;
  proxy_temp_path {work}/nginx-tmp/proxy;
  fastcgi_temp_path {work}/nginx-tmp/fastcgi;
  uwsgi_temp_path {work}/nginx-tmp/uwsgi;
  scgi_temp_path {work}/nginx-tmp/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /.well-known/jwks.json {{
      default_type application/json;
      alias {jwks};
    }}
    location / {{
      default_type application/json;
      add_header {seen} $http_authorization always;
      return 200 '{body}';
    }}
  }}
}}
"""

PROFILE_NONE = """\
# rrdev bench: no caller authentication, the backend's bearer injected, one allow rule.
[target]
name = "bench-backend"
base_url = "http://127.0.0.1:{port}"

[target_credential]
auth_type = "bearer"
token = "${{BACKEND_SERVICE_TOKEN}}"

[proxy_credential]
auth_type = "none"

[proxy]
name = "bench-none"
default_effect = "deny"

[[proxy.rules]]
id = "read"
effect = "allow"
methods = ["GET"]
path = "^/api/"
"""


@dataclass(frozen=True)
class World:
    """The shared fixtures of one benchmark run (see the module docstring)."""

    work: Path
    backend_port: int
    jwks_file: Path
    issuer: str
    audience: str
    token: str
    bad_token: str

    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.backend_port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.backend_url}/.well-known/jwks.json"

    def env(self) -> dict[str, str]:
        """The environment of every server: rrdev importable, secrets from variables."""
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        return os.environ | {
            "PYTHONPATH": path,
            "RRDEV_HOME": str(self.work / "rrdev-home"),
            "BACKEND_SERVICE_TOKEN": BACKEND_TOKEN,
            "NO_COLOR": "1",
        }

    def rrdev(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "rrdev", *args]


def _bad_signature(token: str) -> str:
    head, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def make_world() -> World:
    """A fresh work folder with a keyset, its JWKS file and tokens for the seed profile."""
    import json

    from rrdev.core.keyset import Keyset, mint_token
    from rrdev.core.profile import load_profile

    credential = load_profile(SEED_PROFILE).proxy_credential
    work = Path(tempfile.mkdtemp(prefix="rrdev-bench-"))
    work.chmod(0o755)  # nginx's worker runs as another user and reads the JWKS file
    keyset = Keyset.generate(now=time.time())
    jwks_file = work / "jwks.json"
    jwks_file.write_text(json.dumps(keyset.jwks()))
    jwks_file.chmod(0o644)
    issuer, audience = credential.issuer or "", credential.audience[0]
    token = mint_token(
        keyset, issuer=issuer, audience=audience, scope="read:products", expires_in=86_400
    )
    return World(work, free_port(), jwks_file, issuer, audience, token, _bad_signature(token))


def start_backend(world: World) -> Server:
    """nginx in the foreground, one worker, on a free loopback port."""
    assert len(BODY) == 90, len(BODY)
    (world.work / "nginx-tmp").mkdir(exist_ok=True)
    conf = world.work / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            work=world.work,
            port=world.backend_port,
            jwks=world.jwks_file,
            seen=SEEN_HEADER,
            body=BODY,
        )
    )
    nginx = find_nginx() or "nginx"
    argv = [nginx, "-p", str(world.work), "-c", str(conf), "-e", str(world.work / "nginx.err")]
    server = Server.start("backend", argv, world.backend_port, world.work / "nginx.log")
    server.wait_ready()
    return server
