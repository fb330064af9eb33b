"""Proxy throughput with wrk: nginx direct, the yardstick, ``rrdev up`` (none and jwt).

    python bench/bench_throughput.py [--seconds 10] [--connections 32] [--rounds 2]
                                     [--only direct,yardstick,none,jwt]

Starts nginx (a temporary config, ``daemon off;``, loopback only, a free port, a 90-byte
JSON answer) as the backend, then, each in its own process and all on 127.0.0.1:

* direct      wrk -> nginx
* yardstick   wrk -> ``bench/yardstick.py`` (RS256 + token cache + aiohttp) -> nginx
* rrdev/none  wrk -> ``rrdev up --quiet``, ``auth_type = "none"`` -> nginx
* rrdev/jwt   wrk -> ``rrdev up --quiet`` with ``profiles/auth0.toml`` (jwtVerify against
              the same JWKS file, the seed's three rules, bearer injection) -> nginx

Each setup is checked first (200 with nginx's body; 401 without a token where JWT is
checked), warmed up, then run with ``wrk -t1 -cN -dS --latency`` in interleaved rounds
(direct, yardstick, none, jwt, direct, ...). It prints the median req/s, p50 and p99 per
setup, the server process's CPU share, and the ratios to direct and to the yardstick.
The machine's cores are shared by wrk, nginx and the proxy: compare ratios within one
run, not numbers between runs.

The functions are importable (``start_nginx``, ``run_wrk``, ``start_yardstick``,
``start_rrdev``, ``make_keys``) for the all-in-one harness; nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
#: The backend's answer: 90 bytes of JSON.
BODY = '{"id":1,"name":"widget","price":9.99,"tags":["a","b"],"stock":42,"ok":true,"note":"bench"}'
ISSUER = "https://YOUR_TENANT.us.auth0.com/"  # profiles/auth0.toml's issuer and audience
AUDIENCE = "https://api.myapp.com"
BACKEND_TOKEN = "bench-backend-token"
PATH = "/api/v1/products"

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log error;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location / {{ return 200 '{body}'; }}
    }}
}}
"""

PROFILE_NONE = """
[proxy_credential]
auth_type = "none"
[target]
base_url = "http://127.0.0.1:{port}"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server for port {port} exited ({proc.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listening on 127.0.0.1:{port}")


def start_nginx(tmpdir: str | Path) -> tuple[int, subprocess.Popen[bytes]]:
    """nginx in the foreground on a free loopback port, answering every request with
    ``BODY`` (``application/json``); returns (port, process)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    folder = Path(tmpdir) / "nginx"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=folder, port=port, body=BODY))
    proc = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc)
    return port, proc


# ------------------------------------------------------------------ keys and tokens


@dataclass(frozen=True)
class Keys:
    jwks_file: Path
    token: str
    bad_token: str


def make_keys(tmpdir: str | Path, *, lifetime: int = 3600) -> Keys:
    """An RSA key, its JWKS file, and an RS256 token for profiles/auth0.toml's issuer and
    audience (plus the same token with a broken signature)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk |= {"kid": "bench-1", "alg": "RS256", "use": "sig"}
    jwks_file = Path(tmpdir) / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "bench|client",
        "scope": "read:products",
        "iat": now,
        "exp": now + lifetime,
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench-1"})
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[0] ^= 0xFF
    bad_sig = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return Keys(jwks_file, token, f"{head}.{body}.{bad_sig}")


# ------------------------------------------------------------------ servers


def _env(tmpdir: str | Path, root: Path = ROOT) -> dict[str, str]:
    return os.environ | {
        "RRDEV_HOME": str(Path(tmpdir) / "home"),
        "PYTHONPATH": str(root),
        "BACKEND_SERVICE_TOKEN": BACKEND_TOKEN,
    }


def start_yardstick(
    tmpdir: str | Path, upstream_port: int, keys: Keys
) -> tuple[int, subprocess.Popen[str]]:
    port = free_port()
    cmd = [
        *(PYTHON, str(ROOT / "bench" / "yardstick.py"), "--port", str(port)),
        *("--upstream", f"http://127.0.0.1:{upstream_port}", "--jwks", str(keys.jwks_file)),
        *("--issuer", ISSUER, "--audience", AUDIENCE, "--backend-token", BACKEND_TOKEN),
    ]
    proc = subprocess.Popen(cmd, env=_env(tmpdir), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the yardstick did not start")
    return port, proc


def start_rrdev(
    tmpdir: str | Path,
    upstream_port: int,
    keys: Keys | None,
    extra: tuple[str, ...] = (),
    root: Path = ROOT,
) -> tuple[int, subprocess.Popen[bytes]]:
    """``rrdev up --quiet``: with ``keys``, profiles/auth0.toml verifying against their
    JWKS file; without, an ``auth_type = "none"`` profile with no rules. ``root`` is the
    checkout whose ``rrdev`` runs (another one: a before/after comparison)."""
    port = free_port()
    if keys is None:
        profile = Path(tmpdir) / "none.toml"
        profile.write_text(PROFILE_NONE.format(port=upstream_port))
        options: tuple[str, ...] = ()
    else:
        profile = ROOT / "profiles" / "auth0.toml"
        options = ("--jwks", str(keys.jwks_file))
    cmd = [
        *(PYTHON, "-m", "rrdev", "up", str(profile), "--port", str(port), "--quiet"),
        *("--target", f"http://127.0.0.1:{upstream_port}", *options, *extra),
    ]
    proc = subprocess.Popen(cmd, env=_env(tmpdir, root), stdout=subprocess.DEVNULL)
    wait_port(port, proc)
    return port, proc


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ checks and wrk


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def sanity(name: str, url: str, headers: dict[str, str], keys: Keys | None) -> None:
    """200 with the backend's body; 401 without a token and with a bad signature where
    a JWT is checked."""
    status, body = fetch(url, headers)
    if status != 200 or body != BODY.encode():
        raise SystemExit(f"{name}: expected 200 with the backend's body, got {status} {body!r}")
    if keys is not None:
        for label, sent in (("no token", {}), ("bad signature", _bearer(keys.bad_token))):
            status, _body = fetch(url, sent)
            if status != 401:
                raise SystemExit(f"{name}: expected 401 with {label}, got {status}")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    url: str,
    seconds: float,
    connections: int,
    headers: dict[str, str] | None = None,
    *,
    pid: int | None = None,
) -> dict[str, float]:
    """One ``wrk -t1 --latency`` run: {"rps", "p50_ms", "p99_ms", "errors"}, plus "cpu"
    (the share of one core process ``pid`` used meanwhile) and "cpu_us" (its CPU time
    per request) when ``pid`` is given."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    before = _cpu_seconds(pid) if pid else 0.0
    started = time.monotonic()
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    result = parse_wrk(out)
    if pid:
        result["cpu"] = (_cpu_seconds(pid) - before) / (time.monotonic() - started)
        # CPU time per request: steadier than req/s on a machine others are using too.
        result["cpu_us"] = result["cpu"] / result["rps"] * 1e6 if result["rps"] else 0.0
    return result


def parse_wrk(out: str) -> dict[str, float]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if rps is None or p50 is None or p99 is None:
        raise ValueError(f"cannot read wrk's output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "errors": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket_errors else 0.0,
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ main


@dataclass
class Setup:
    name: str
    port: int
    pid: int
    headers: dict[str, str]
    runs: list[dict[str, float]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)


def main() -> None:
    parser = argparse.ArgumentParser(description="wrk: nginx direct, yardstick, rrdev up")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--only", default="direct,yardstick,none,jwt")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another checkout of rrdev: adds its none and jwt setups (before/after)",
    )
    args = parser.parse_args()
    wanted = args.only.split(",")
    procs: list[subprocess.Popen[Any]] = []
    with tempfile.TemporaryDirectory(prefix="rrdev-wrk-") as tmp:
        try:
            setups = _start_all(tmp, wanted, procs, args.before)
            print(_uptime())
            for setup in setups:  # warm-up: pools filled, caches hot
                run_wrk(_url(setup), args.warmup, args.connections, setup.headers)
            for number in range(1, args.rounds + 1):
                # Forward, then backward (as bench/load.py): drift weighs on all alike.
                for setup in setups if number % 2 else setups[::-1]:
                    result = run_wrk(
                        _url(setup), args.seconds, args.connections, setup.headers, pid=setup.pid
                    )
                    setup.runs.append(result)
            _print_table(setups, args)
            print(_uptime())
        finally:
            for proc in reversed(procs):
                stop(proc)


def _start_all(
    tmp: str, wanted: list[str], procs: list[subprocess.Popen[Any]], before: Path | None = None
) -> list[Setup]:
    nginx_port, nginx = start_nginx(tmp)
    procs.append(nginx)
    keys = make_keys(tmp)
    setups = [Setup("direct", nginx_port, nginx.pid, {})]
    if "yardstick" in wanted:
        port, proc = start_yardstick(tmp, nginx_port, keys)
        procs.append(proc)
        setups.append(Setup("yardstick", port, proc.pid, _bearer(keys.token)))
    if "none" in wanted:
        port, proc = start_rrdev(tmp, nginx_port, None)
        procs.append(proc)
        setups.append(Setup("rrdev/none", port, proc.pid, {}))
    if "jwt" in wanted:
        port, proc = start_rrdev(tmp, nginx_port, keys)
        procs.append(proc)
        setups.append(Setup("rrdev/jwt", port, proc.pid, _bearer(keys.token)))
    if before is not None:
        for kind in ("none", "jwt"):
            port, proc = start_rrdev(tmp, nginx_port, keys if kind == "jwt" else None, (), before)
            procs.append(proc)
            headers = _bearer(keys.token) if kind == "jwt" else {}
            setups.append(Setup(f"before/{kind}", port, proc.pid, headers))
    setups = [s for s in setups if s.name == "direct" or s.name.split("/")[-1] in wanted]
    for setup in setups:
        needs_jwt = setup.name in ("yardstick", "rrdev/jwt", "before/jwt")
        sanity(setup.name, _url(setup), setup.headers, keys if needs_jwt else None)
    return setups


def _url(setup: Setup) -> str:
    return f"http://127.0.0.1:{setup.port}{PATH}"


def _print_table(setups: list[Setup], args: argparse.Namespace) -> None:
    direct = setups[0].median("rps")
    yard = next((s.median("rps") for s in setups if s.name == "yardstick"), None)
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds:g}s, {args.rounds} interleaved rounds, "
        "medians"
    )
    print(f"{'setup':12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU':>5} {'CPU us/req':>10} "
          f"{'x direct':>8} {'x yardstick':>11} {'non-2xx':>7}")  # fmt: skip
    for s in setups:
        rps = s.median("rps")
        ratio = f"{rps / yard:11.2f}" if yard else f"{'-':>11}"
        print(
            f"{s.name:12} {rps:8.0f} {s.median('p50_ms'):7.2f} {s.median('p99_ms'):7.2f} "
            f"{s.median('cpu'):5.0%} {s.median('cpu_us'):10.0f} {rps / direct:8.3f} {ratio} "
            f"{sum(r['errors'] for r in s.runs):7.0f}"
        )


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


if __name__ == "__main__":
    main()
