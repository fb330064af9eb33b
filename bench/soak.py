"""Soak test: a long stream of requests through `rrdev up` while its profile is rewritten
and its JWKS server goes away and comes back.

    python bench/soak.py [--requests 10000] [--concurrency 100] [--rewrites 50]
                         [--outages 4] [--outage-seconds 2] [--min-gap 0.6]
                         [--seconds-cap 300] [--json] [--proxy-log]

Everything runs on 127.0.0.1 (ports below the ephemeral range) and stops by itself:
after the request count, or at --seconds-cap for the whole run. The script starts

* a minimal ASGI backend (uvicorn, its own process) answering 200 to everything;
* a JWKS server (stdlib http.server with keep-alive, its own process, so the load
  generator cannot slow it down) publishing an RSA key generated for the run; the
  script stops it (SIGTERM) and starts it again on the same port;
* `rrdev up PROFILE --quiet` (its own process) with a jwtVerify profile whose
  jwks_uri is that server and whose target is the backend; tokens are signed with
  PyJWT (RS256, kid, iss, aud, exp).

It sends --warmup requests (500) at full speed, measures the proxy process, then sends
--requests more with at most --concurrency in flight while

* the profile file is rewritten --rewrites times, spread evenly over the requests,
  replaced atomically (temp file + os.replace), cycling through four variants: valid
  (new rule note and priority, and a changed jwks_refetch_interval_seconds, which keeps
  the key cache), broken TOML, valid with another jwks_uri (a new query string on the
  same server: the proxy then starts a new, empty key cache, and must close the one it
  replaced), and an invalid regular expression. Each valid variant puts a version
  number into the note of the DELETE rule, which comes back as the hint of its 403, so
  the script sees which profile answered each DELETE. Rewrites are at least --min-gap
  seconds apart (the proxy looks at the file every 0.5 s), and the last one 1.5 s after
  the one before, so the last valid profile must be in force at the end. The load is paced to
  at most requests / ((rewrites + 1) * min-gap) per second so that the rewrites stay
  spread over it (--min-gap 0 runs it at full speed);
* the JWKS server is stopped for --outage-seconds, --outages times, one at a time:
  odd-numbered outages start just before a rewrite that empties the key cache (token
  requests then get the documented 503 jwks_unavailable until the server is back),
  even-numbered ones just before a broken rewrite followed by a valid one that keeps
  the cache (tokens should keep verifying with the cached keys).

Each request is one of: GET with a valid token (200, 80%), GET without a token (401
token_missing), GET with an expired token (401 token_expired), GET with a token whose
kid is not in the JWKS (401 key_not_found), DELETE with a read-only token (403
rule_denied). Its status, the JSON body's `reason` and the `requestrocket-proxy-code`
header are compared with that expectation. It prints:

* requests/s and latency of the load, and a table of status/reason counts;
* errors by class: mismatches as (request kind, expected, got), exceptions by class.
  A 503 jwks_unavailable to a request with a token while the JWKS server was down (or
  within a second of its restart) is documented behaviour and counted apart; anywhere
  else it is an error, as is any 5xx or connection error;
* the rewrites: "reload failed" lines on rrdev's stderr, how soon each valid version
  answered a DELETE, answers from an older profile than one a finished request had
  already seen (an error), answers from a profile replaced over 1.5 s earlier, and
  which profile answers after the run (must be the last valid one);
* each outage: its token requests, how many got 503, JWKS fetches after the restart;
* RSS (/proc/PID/status), open fds (/proc/PID/fd, by kind; sockets by peer and TCP
  state) and threads of the `rrdev up` process after the warm-up ("before") and after
  the load ("after"), both once the client has closed its connections and --settle
  seconds have passed. FAIL when RSS grew 10% or more or the fd count grew at all.

--json prints the same summary as JSON. --proxy-log runs `rrdev up --log-file` and
keeps the work directory (profile, rrdev's output, per-request records with
auth_ms/upstream_ms), which is otherwise kept only when the run fails.

Exit code 0 when every answer was expected and the limits hold, 1 otherwise. It
assumes a small shared machine (2 cores for client, proxy, backend and JWKS server):
the request rate and latencies are context, not pass criteria. A default run takes
about a minute there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"

BACKEND = """
import uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})

uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False,
            timeout_keep_alive=1)
"""

# @NAME@ placeholders (TOML's inline tables use braces, so no str.format).
PROFILE = """\
# rrdev soak profile (rewritten while the proxy runs)
[target]
name = "soak-backend"
base_url = "http://127.0.0.1:@BACKEND@"

[target_credential]
auth_type = "none"

[proxy_credential]
auth_type = "jwtVerify"
jwks_uri = "http://127.0.0.1:@JWKS@/.well-known/jwks.json@JWKS_QUERY@"
issuer = "@ISSUER@"
audience = "@AUDIENCE@"
jwks_refetch_interval_seconds = @REFETCH@

[proxy]
name = "soak"
default_effect = "deny"
listen = "127.0.0.1:@PORT@"

[[proxy.rules]]
id = "read-catalog"
effect = "allow"
methods = ["GET"]
path = "@READ_PATH@"
priority = @PRIORITY@
notes = "Read access to the catalog"

[[proxy.rules]]
id = "scope-gate-delete"
effect = "deny"
methods = ["DELETE"]
path = ".*"
token = [{ claim = "^scope$", value = "delete:resources", presence = "must_absent" }]
notes = "soak v@VERSION@: DELETE needs delete:resources"
"""

READ_PATH = "^/api/v1/(users|products|orders)(/.*)?$"
VERSION_RE = re.compile(r"soak v(\d+):")
AUDIENCE = "https://api.soak.test"
KID = "soak-key-1"
GRANTED, DENIED = "proxy-access-granted", "proxy-access-denied"
#: a 503 this long after the JWKS server is back still counts as part of the outage
#: (a request may have waited for a fetch that started while it was down)
OUTAGE_GRACE = 1.0
RSS_LIMIT = 0.10
#: the proxy should have loaded a valid profile this long after it was written (it
#: checks the file every 0.5 s); one followed sooner by a broken one may never be
LOAD_WINDOW = 1.5


@dataclass(frozen=True)
class Kind:
    name: str
    method: str
    path: str
    token: str | None  # "valid", "expired", "stray" (kid not in the JWKS) or None
    status: int
    reason: str | None  # None: the backend's own 200


KINDS = (
    Kind("read", "GET", "/api/v1/products", "valid", 200, None),
    Kind("no-token", "GET", "/api/v1/products", None, 401, "token_missing"),
    Kind("expired", "GET", "/api/v1/orders", "expired", 401, "token_expired"),
    Kind("unknown-kid", "GET", "/api/v1/users", "stray", 401, "key_not_found"),
    Kind("delete", "DELETE", "/api/v1/products/1", "valid", 403, "rule_denied"),
)
#: one cycle of request kinds (indexes into KINDS): 80% reads, 5% each of the others
MIX = (0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 4, 0, 0, 0, 0, 3)
READER_TOKENS = 16


@dataclass
class Result:
    kind: int
    start: float
    end: float
    status: int = 0
    reason: str | None = None
    code: str | None = None
    version: int | None = None
    error: str | None = None


@dataclass
class Rewrite:
    index: int
    variant: str
    at: float
    version: int  # the version in force if this rewrite is valid, else the last valid one
    valid: bool


@dataclass
class Outage:
    down: float
    up: float | None = None
    before_rewrite: int | None = None


@dataclass
class Run:
    """Everything the load and chaos tasks share."""

    t0: float = field(default_factory=time.monotonic)
    t0_wall: float = field(default_factory=time.time)
    done: int = 0
    results: list[Result] = field(default_factory=list)
    rewrites: list[Rewrite] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.t0


# ------------------------------------------------------------------ helpers


def free_port() -> int:
    """A free port below the ephemeral range: connecting to a port nobody listens on
    (the JWKS server's, during an outage) must not be able to connect to itself, which
    TCP allows when the kernel happens to pick that same port as the source."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


async def wait_for(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listening on {HOST}:{port} after {timeout:g} s")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------ the proxy process

TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


def tcp_sockets() -> dict[str, tuple[int, int, str]]:
    """inode -> (local port, remote port, state) of every TCP socket on the machine."""
    table: dict[str, tuple[int, int, str]] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(name).read_text().splitlines()[1:]:
                parts = line.split()
                local, remote, state, inode = parts[1], parts[2], parts[3], parts[9]
                table[inode] = (
                    int(local.rsplit(":", 1)[1], 16),
                    int(remote.rsplit(":", 1)[1], 16),
                    TCP_STATES.get(state, state),
                )
    return table


def process_stats(pid: int, ports: dict[str, int]) -> dict[str, Any]:
    """RSS, threads and open fds (by kind; sockets by peer and state) of ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M)[1])  # type: ignore[index]
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M)[1])  # type: ignore[index]
    tcp = tcp_sockets()
    peers = {port: name for name, port in ports.items()}
    kinds: Counter[str] = Counter()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inode = target[8:-1]
            if inode not in tcp:
                kinds["socket (not TCP)"] += 1
                continue
            local, remote, state = tcp[inode]
            if state == "LISTEN":
                kinds["socket listening"] += 1
            elif local == ports["proxy"]:
                kinds[f"socket from client {state}"] += 1
            else:
                kinds[f"socket to {peers.get(remote, f'port {remote}')} {state}"] += 1
        elif target.startswith("/"):
            kinds["file"] += 1
        else:
            kinds[re.sub(r"\[\d+\]$", "", target)] += 1
    return {"rss_kib": rss, "threads": threads, "fds": kinds.total(), "fd_kinds": dict(kinds)}


# ------------------------------------------------------------------ JWKS server


JWKS_SERVER = """
import http.server, sys, time

body = open(sys.argv[1], "rb").read()
hits = open(sys.argv[2], "a", buffering=1)

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real issuer

    def do_GET(self):
        hits.write(f"{time.time()}\\n")
        found = self.path.split("?")[0] == "/.well-known/jwks.json"
        self.send_response(200 if found else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body) if found else 0))
        self.end_headers()
        if found:
            self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[3])), Handler)
try:
    server.serve_forever()
except KeyboardInterrupt:  # Ctrl+C reaches the whole process group
    pass
"""


class JwksServer:
    """The issuer's JWKS on a fixed port, in its own process (so the load generator
    cannot slow it down), stopped with SIGTERM and started again on the same port."""

    def __init__(
        self, port: int, document: dict[str, Any], work: Path, procs: list[subprocess.Popen]
    ) -> None:
        self.port = port
        self.document = work / "jwks.json"
        self.document.write_text(json.dumps(document))
        self.hits_file = work / "jwks-hits.txt"
        self.procs = procs  # cleaned up by main() whatever happens
        self.proc: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None

    async def start(self) -> None:
        args = [str(self.document), str(self.hits_file), str(self.port)]
        self.proc = subprocess.Popen([PYTHON, "-c", JWKS_SERVER, *args])
        self.procs.append(self.proc)
        await wait_for(self.port, self.proc)

    async def stop(self) -> None:
        if self.proc is not None:
            await asyncio.to_thread(stop_process, self.proc)
            self.procs.remove(self.proc)
            self.proc = None

    def hits(self, t0_wall: float) -> list[float]:
        """When each JWKS request came, in seconds since ``t0_wall``."""
        if not self.hits_file.exists():
            return []
        return [float(line) - t0_wall for line in self.hits_file.read_text().split()]


# ------------------------------------------------------------------ tokens and profile


def make_tokens(issuer: str) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The JWKS document and the tokens of each kind."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stray = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=KID, use="sig", alg="RS256")
    now = int(time.time())

    def sign(private: rsa.RSAPrivateKey, kid: str, sub: str, exp: int) -> str:
        claims = {"iss": issuer, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": exp}
        claims["scope"] = "read:products"
        return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})

    tokens = {
        "valid": [sign(key, KID, f"reader-{i}", now + 3600) for i in range(READER_TOKENS)],
        "expired": [sign(key, KID, "reader-expired", now - 600)],
        "stray": [sign(stray, "soak-stray-key", "reader-stray", now + 3600)],
    }
    return {"keys": [jwk]}, tokens


class ProfileWriter:
    """The profile file and its variants; ``rewrite(k)`` writes variant ``k % 4``."""

    VARIANTS = ("valid", "broken-toml", "valid-new-jwks-cache", "broken-regex")

    def __init__(self, path: Path, ports: dict[str, int], issuer: str) -> None:
        self.path = path
        self.ports = ports
        self.issuer = issuer
        self.version = 0
        self.refetch = 30
        self.source = 0
        self.priority = 10

    def text(self, *, read_path: str = READ_PATH) -> str:
        values = {
            "BACKEND": self.ports["backend"],
            "JWKS": self.ports["JWKS"],
            "JWKS_QUERY": f"?source={self.source}" if self.source else "",
            "PORT": self.ports["proxy"],
            "ISSUER": self.issuer,
            "AUDIENCE": AUDIENCE,
            "REFETCH": self.refetch,
            "PRIORITY": self.priority,
            "VERSION": self.version,
            "READ_PATH": read_path,
        }
        text = PROFILE
        for name, value in values.items():
            text = text.replace(f"@{name}@", str(value))
        return text

    def write_initial(self) -> None:
        self.path.write_text(self.text())

    def rewrite(self, k: int) -> tuple[str, bool]:
        variant = self.VARIANTS[k % 4]
        if variant.startswith("valid"):
            self.version += 1
            self.priority = 10 + self.version % 7
            if variant == "valid-new-jwks-cache":
                self.source += 1  # another jwks_uri: a new, empty key cache
            else:
                self.refetch = 61 - self.refetch  # 30 <-> 31: new timings, the keys stay
            write_atomic(self.path, self.text())
            return variant, True
        if variant == "broken-toml":
            text = self.text().replace(
                '[[proxy.rules]]\nid = "scope', '[[proxy.rules]\nid = "scope'
            )
        else:
            text = self.text(read_path="^/api/v1/(users|products")
        write_atomic(self.path, text)
        return variant, False


def outage_points(rewrites: int, outages: int) -> list[int]:
    """The rewrite each outage starts just before: the 1st, 3rd, ... before a rewrite
    that empties the key cache (k % 4 == 2), the 2nd, 4th, ... before a broken regex
    (k % 4 == 3), which is followed by a valid rewrite that keeps the cache."""
    points: list[int] = []
    for i in range(outages):
        want = 2 if i % 2 == 0 else 3
        centre = (2 * i + 1) * rewrites / (2 * outages)
        candidates = [k for k in range(rewrites) if k % 4 == want and k not in points]
        if candidates:
            points.append(min(candidates, key=lambda k: abs(k - centre)))
    return sorted(points)


# ------------------------------------------------------------------ load


async def load(
    run: Run,
    port: int,
    tokens: dict[str, list[str]],
    first: int,
    count: int,
    concurrency: int,
    deadline: float,
    pace: float = 0.0,
) -> float:
    """Send requests ``first .. first+count-1``, starting them at most one per ``pace``
    seconds (no catching up after a stall); returns the elapsed seconds."""
    base = f"http://{HOST}:{port}"
    next_index = first
    next_slot = 0.0
    end = first + count
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        kind_index = MIX[i % len(MIX)]
        kind = KINDS[kind_index]
        headers = {}
        if kind.token is not None:
            choices = tokens[kind.token]
            headers["Authorization"] = f"Bearer {choices[i % len(choices)]}"
        result = Result(kind_index, run.now(), 0.0)
        try:
            async with session.request(kind.method, base + kind.path, headers=headers) as resp:
                body = await resp.read()
                result.status = resp.status
                result.code = resp.headers.get("requestrocket-proxy-code")
                if resp.status != 200 or kind.reason is not None:
                    with contextlib.suppress(ValueError):
                        payload = json.loads(body)
                        result.reason = payload.get("reason")
                        match = VERSION_RE.search(str(payload.get("hint", "")))
                        if match:
                            result.version = int(match[1])
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            result.error = type(exc).__name__
        result.end = run.now()
        run.results.append(result)
        run.done += 1

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, next_slot
        while next_index < end and time.monotonic() < deadline:
            i = next_index
            next_index += 1
            slot = max(next_slot, time.monotonic())
            next_slot = slot + pace
            if slot > time.monotonic():
                await asyncio.sleep(slot - time.monotonic())
            await one(session, i)

    begin = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return time.monotonic() - begin


async def chaos(
    run: Run,
    writer: ProfileWriter,
    jwks: JwksServer,
    first: int,
    count: int,
    rewrites: int,
    outages: int,
    outage_seconds: float,
    min_gap: float,
    restarts: list[asyncio.Task[None]],
) -> None:
    """Rewrite the profile and stop/restart the JWKS server as the requests progress
    (and at least ``min_gap`` seconds apart)."""
    points = set(outage_points(rewrites, outages))

    async def outage(before: int) -> None:
        record = Outage(run.now(), before_rewrite=before)
        run.outages.append(record)
        await jwks.stop()
        try:
            await asyncio.sleep(outage_seconds)
        finally:
            await jwks.start()
            record.up = run.now()

    last = float("-inf")
    for k in range(rewrites):
        threshold = first + (k + 1) * count // (rewrites + 1)
        # The last one waits longer: the last valid profile must have been loaded.
        gap = min_gap if k < rewrites - 1 else max(min_gap, LOAD_WINDOW)
        while run.done < threshold or run.now() < last + gap:
            await asyncio.sleep(0.02)
        if k in points and not any(not task.done() for task in restarts):  # one at a time
            restarts.append(asyncio.create_task(outage(k)))
            await asyncio.sleep(0)  # let it stop the server before the rewrite
            while jwks.running:
                await asyncio.sleep(0.01)
        variant, valid = writer.rewrite(k)
        last = run.now()
        run.rewrites.append(Rewrite(k, variant, last, writer.version, valid))


# ------------------------------------------------------------------ analysis


def in_outage(result: Result, outages: list[Outage]) -> bool:
    for outage in outages:
        up = outage.up if outage.up is not None else float("inf")
        if result.start <= up + OUTAGE_GRACE and result.end >= outage.down:
            return True
    return False


def classify(results: list[Result], outages: list[Outage]) -> dict[str, Any]:
    """Expected answers, documented 503s, and errors by class."""
    ok = documented = 0
    mismatches: Counter[str] = Counter()
    exceptions: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for result in results:
        kind = KINDS[result.kind]
        if result.error is not None:
            exceptions[result.error] += 1
            statuses["(no answer)"] += 1
            continue
        statuses[f"{result.status} {result.reason or '-'}"] += 1
        got = (result.status, result.reason)
        want_code = GRANTED if kind.status == 200 else DENIED
        if got == (kind.status, kind.reason) and result.code == want_code:
            ok += 1
        elif (
            got == (503, "jwks_unavailable")
            and kind.token is not None
            and result.code == DENIED
            and in_outage(result, outages)
        ):
            documented += 1
        else:
            expected = f"{kind.status} {kind.reason or '-'} {want_code}"
            actual = f"{result.status} {result.reason or '-'} {result.code}"
            if got == (503, "jwks_unavailable"):
                actual += " (JWKS server up)"
            mismatches[f"{kind.name}: expected {expected}, got {actual}"] += 1
    return {
        "ok": ok,
        "documented_503": documented,
        "mismatches": dict(mismatches.most_common()),
        "exceptions": dict(exceptions.most_common()),
        "statuses": dict(sorted(statuses.items())),
    }


def reload_report(
    results: list[Result], rewrites: list[Rewrite], outages: list[Outage]
) -> dict[str, Any]:
    """What the 403 hints say about reloads: how soon each valid version answered; any
    answer from an older profile than one a finished request had already seen (a
    request started after that one ended: an error); and answers from a profile
    replaced more than LOAD_WINDOW seconds before the request started (slow reloads)."""
    answered = [(r.start, r.end, r.version) for r in results if r.version is not None]
    by_end = sorted((end, version) for _, end, version in answered)
    regressions = 0
    newest, j = -1, 0
    for start, _, version in sorted(answered):
        while j < len(by_end) and by_end[j][0] < start:
            newest = max(newest, by_end[j][1])
            j += 1
        regressions += version < newest
    valid = [(w.at, w.version) for w in rewrites if w.valid]
    late = 0
    for start, _, version in answered:
        due = [v for at, v in valid if at <= start - LOAD_WINDOW]
        late += bool(due) and version < due[-1]
    first_seen: dict[int, float] = {}
    for end, version in by_end:
        first_seen.setdefault(version, end)
    delays = []
    unseen = []
    for rewrite in rewrites:
        down = any(o.down <= rewrite.at <= (o.up or float("inf")) for o in outages)
        if rewrite.valid and rewrite.version in first_seen and not down:
            delays.append(first_seen[rewrite.version] - rewrite.at)
        elif rewrite.valid and rewrite.version not in first_seen:
            # replaced before a DELETE came by, or no key to verify one (an outage)
            during = ", JWKS down" if down else ""
            unseen.append(f"v{rewrite.version} ({rewrite.variant}{during})")
    return {
        "answers_by_version": dict(sorted(Counter(v for _, v in by_end).items())),
        "valid_versions_seen": len(first_seen.keys() & {w.version for w in rewrites if w.valid}),
        "valid_versions_not_seen": unseen,
        "seen_after_median_s": round(statistics.median(delays), 3) if delays else None,
        "seen_after_max_s": round(max(delays), 3) if delays else None,
        "regressions": regressions,
        "late_answers": late,
    }


def final_versions(rewrites: list[Rewrite]) -> list[int]:
    """The profile versions that may answer after the run: the last valid one, and an
    earlier one when a broken rewrite followed it too soon for the proxy to be sure to
    have loaded it (it checks the file every 0.5 s, and loads it in a thread)."""
    versions = []
    for i in range(len(rewrites) - 1, -1, -1):
        rewrite = rewrites[i]
        if not rewrite.valid:
            continue
        versions.append(rewrite.version)
        following = rewrites[i + 1].at if i + 1 < len(rewrites) else float("inf")
        if following - rewrite.at >= LOAD_WINDOW:
            return versions
    return [*versions, 0]


def outage_report(run: Run, results: list[Result], jwks_hits: list[float]) -> list[dict[str, Any]]:
    rows = []
    for number, outage in enumerate(run.outages, 1):
        up = outage.up if outage.up is not None else run.now()
        inside = [r for r in results if r.start <= up + OUTAGE_GRACE and r.end >= outage.down]
        tokened = [r for r in inside if KINDS[r.kind].token is not None and r.error is None]
        rewrites = [f"{w.index}:{w.variant}" for w in run.rewrites if outage.down <= w.at <= up]
        rows.append(
            {
                "outage": number,
                "down_s": round(outage.down, 2),
                "up_s": round(up, 2),
                "before_rewrite": outage.before_rewrite,
                "rewrites_inside": rewrites,
                "token_requests": len(tokened),
                "jwks_unavailable_503": sum(r.status == 503 for r in tokened),
                "token_requests_answered_as_usual": sum(
                    (r.status, r.reason) == (KINDS[r.kind].status, KINDS[r.kind].reason)
                    for r in tokened
                ),
                "jwks_fetches_2s_after_restart": sum(up <= t <= up + 2 for t in jwks_hits),
            }
        )
    return rows


def stderr_report(path: Path) -> dict[str, Any]:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    failed = [line for line in lines if line.startswith("reload failed:")]
    other = [line for line in lines if line.strip() and not line.startswith("reload failed:")]
    suspicious = [line for line in lines if re.search(r"Traceback|Exception|record failed", line)]
    return {
        "reload_failed_lines": len(failed),
        "suspicious_lines": suspicious[:20],
        "other_lines": other[:20],
        "total_lines": len(lines),
    }


# ------------------------------------------------------------------ main


async def probe(port: int, token: str) -> dict[str, Any]:
    """The answers after the run: a valid read, and which profile version answers."""
    url = f"http://{HOST}:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(url + "/api/v1/products", headers=auth) as resp:
            read = resp.status
        async with session.delete(url + "/api/v1/products/1", headers=auth) as resp:
            payload = await resp.json(content_type=None)
            match = VERSION_RE.search(str(payload.get("hint", "")))
    return {"read_status": read, "version": int(match[1]) if match else None}


async def soak(args: argparse.Namespace, work: Path, procs: list[subprocess.Popen]) -> dict:
    deadline = time.monotonic() + args.seconds_cap
    ports = {"backend": free_port(), "JWKS": free_port(), "proxy": free_port()}
    issuer = f"http://{HOST}:{ports['JWKS']}/"
    document, tokens = make_tokens(issuer)
    env = os.environ | {
        "RRDEV_HOME": str(work / "home"),
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "1000",
        "NO_COLOR": "1",
    }
    run = Run()
    jwks = JwksServer(ports["JWKS"], document, work, procs)
    await jwks.start()
    backend_code = BACKEND.replace("PORT", str(ports["backend"]))
    procs.append(subprocess.Popen([PYTHON, "-c", backend_code], env=env))
    profile = work / "soak.toml"
    writer = ProfileWriter(profile, ports, issuer)
    writer.write_initial()
    await wait_for(ports["backend"], procs[-1])
    proxy_out, proxy_err = work / "proxy.stdout", work / "proxy.stderr"
    with proxy_out.open("wb") as out, proxy_err.open("wb") as err:
        cmd = [PYTHON, "-m", "rrdev", "up", str(profile), "--quiet", "--port", str(ports["proxy"])]
        if args.proxy_log:
            cmd += ["--log-file", str(work / "proxy.jsonl")]
        proxy = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
    procs.append(proxy)
    try:
        await wait_for(ports["proxy"], proxy)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{proxy_err.read_text()}") from None

    def note(text: str) -> None:
        print(f"[{run.now():6.1f} s] {text}", file=sys.stderr, flush=True)

    note(
        f"proxy pid {proxy.pid} on :{ports['proxy']}, backend :{ports['backend']}, "
        f"JWKS :{ports['JWKS']}; warm-up {args.warmup} requests"
    )
    warm_seconds = await load(
        run, ports["proxy"], tokens, 0, args.warmup, args.concurrency, deadline
    )
    warm_results = list(run.results)
    await asyncio.sleep(args.settle)
    before = process_stats(proxy.pid, ports)
    note(
        f"before: RSS {before['rss_kib']} KiB, {before['fds']} fds; "
        f"load: {args.requests} requests, {args.rewrites} rewrites"
    )

    run.results.clear()
    run.done = 0
    restarts: list[asyncio.Task[None]] = []
    chaos_task = asyncio.create_task(
        chaos(
            run,
            writer,
            jwks,
            0,
            args.requests,
            args.rewrites,
            args.outages,
            args.outage_seconds,
            args.min_gap,
            restarts,
        )
    )
    load_start = run.now()
    pace = args.min_gap * (args.rewrites + 1) / args.requests if args.requests else 0.0
    load_seconds = await load(
        run, ports["proxy"], tokens, args.warmup, args.requests, args.concurrency, deadline, pace
    )
    if run.done < args.requests:
        chaos_task.cancel()  # stopped by --seconds-cap
    with contextlib.suppress(asyncio.CancelledError):
        await chaos_task
    chaos_complete = len(run.rewrites) == args.rewrites
    for task in restarts:
        await task
    if not jwks.running:
        await jwks.start()
    note(f"load done: {run.done} requests in {load_seconds:.1f} s; settling {args.settle:g} s")
    await asyncio.sleep(args.settle)
    after = process_stats(proxy.pid, ports)
    final = await probe(ports["proxy"], tokens["valid"][0])
    proxy_alive = proxy.poll() is None
    stop_process(proxy)
    jwks_hits = jwks.hits(run.t0_wall)

    results = run.results
    latencies = [r.end - r.start for r in results if r.error is None]
    classes = classify(results, run.outages)
    warm = classify(warm_results, [])
    reloads = reload_report(results, run.rewrites, run.outages)
    acceptable = final_versions(run.rewrites)
    rss_growth = (after["rss_kib"] - before["rss_kib"]) / before["rss_kib"]
    fd_growth = after["fds"] - before["fds"]
    failures = []
    if run.done < args.requests:
        failures.append(f"only {run.done} of {args.requests} requests within --seconds-cap")
    if not chaos_complete:
        failures.append(f"only {len(run.rewrites)} of {args.rewrites} rewrites happened")
    unexpected = sum(classes["mismatches"].values()) + sum(classes["exceptions"].values())
    if unexpected:
        failures.append(f"{unexpected} unexpected answers or errors")
    warm_unexpected = sum(warm["mismatches"].values()) + sum(warm["exceptions"].values())
    if warm_unexpected:
        failures.append(f"{warm_unexpected} unexpected answers during the warm-up")
    if reloads["regressions"]:
        failures.append(f"{reloads['regressions']} answers from an older profile")
    if final["version"] not in acceptable or final["read_status"] != 200:
        failures.append(
            f"after the run the proxy answers with profile v{final['version']} "
            f"(read {final['read_status']}), expected v{acceptable[0]}"
        )
    if rss_growth >= RSS_LIMIT:
        failures.append(f"RSS grew {rss_growth:+.1%} (limit {RSS_LIMIT:.0%})")
    if fd_growth > 0:
        failures.append(f"open fds grew by {fd_growth}")
    if not proxy_alive:
        failures.append(f"rrdev up exited early with {proxy.returncode}")
    variants = Counter(w.variant for w in run.rewrites)
    return {
        "settings": {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "rewrites": args.rewrites,
            "outages": args.outages,
            "outage_seconds": args.outage_seconds,
            "min_gap_seconds": args.min_gap,
            "pace_limit_rps": round(1 / pace) if pace else None,
            "warmup": args.warmup,
            "settle_seconds": args.settle,
            "seconds_cap": args.seconds_cap,
        },
        "warmup": {
            "requests": len(warm_results),
            "seconds": round(warm_seconds, 2),
            "unexpected": warm_unexpected,
        },
        "load": {
            "requests": run.done,
            "seconds": round(load_seconds, 2),
            "started_at_s": round(load_start, 2),
            "requests_per_second": round(run.done / load_seconds, 1) if load_seconds else 0,
            "latency_ms": {
                "mean": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
                "p50": round(percentile(latencies, 0.5) * 1000, 1),
                "p99": round(percentile(latencies, 0.99) * 1000, 1),
                "max": round(max(latencies, default=0) * 1000, 1),
            },
        },
        "answers": classes,
        "rewrites": {
            "done": len(run.rewrites),
            "variants": dict(variants),
            "final_versions_acceptable": acceptable,
            **reloads,
        },
        "proxy_stderr": stderr_report(proxy_err),
        "outages": outage_report(run, results, jwks_hits),
        "jwks_fetches_total": len(jwks_hits),
        "final_probe": final,
        "process": {
            "pid": proxy.pid,
            "before": before,
            "after": after,
            "rss_growth": round(rss_growth, 4),
            "fd_growth": fd_growth,
        },
        "failures": failures,
        "result": "FAIL" if failures else "PASS",
        "work_dir": str(work),
    }


def print_summary(s: dict[str, Any]) -> None:
    cfg, ld, ans, rw = s["settings"], s["load"], s["answers"], s["rewrites"]
    print(
        f"rrdev soak: {cfg['requests']} requests at concurrency {cfg['concurrency']}, "
        f"{cfg['rewrites']} profile rewrites, {cfg['outages']} JWKS outages of "
        f"{cfg['outage_seconds']:g} s (warm-up {cfg['warmup']}, settle {cfg['settle_seconds']:g} s)"
    )
    wu = s["warmup"]
    rate = wu["requests"] / wu["seconds"] if wu["seconds"] else 0
    print(
        f"warm-up   {wu['requests']} requests in {wu['seconds']:.1f} s = {rate:.0f} req/s "
        f"(full speed), {wu['unexpected']} unexpected"
    )
    lat = ld["latency_ms"]
    print(
        f"load      {ld['requests']} requests in {ld['seconds']:.1f} s = "
        f"{ld['requests_per_second']:.0f} req/s; latency mean {lat['mean']} ms, "
        f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms"
    )
    if cfg["pace_limit_rps"]:
        print(
            f"          (paced to at most {cfg['pace_limit_rps']} req/s, so that the rewrites "
            f"are {cfg['min_gap_seconds']:g} s apart or more)"
        )
    print("\nstatus reason                 count")
    for status, count in ans["statuses"].items():
        print(f"  {status:<27} {count:6}")
    print(
        f"\nanswers as expected            {ans['ok']:6}\n"
        f"503 jwks_unavailable in outage {ans['documented_503']:6}   (documented)"
    )
    errors = sum(ans["mismatches"].values()) + sum(ans["exceptions"].values())
    print(f"unexpected                     {errors:6}")
    for line, count in ans["mismatches"].items():
        print(f"  {count:6}  {line}")
    for name, count in ans["exceptions"].items():
        print(f"  {count:6}  exception {name}")

    st = s["proxy_stderr"]
    variants = ", ".join(f"{n} {v}" for v, n in rw["variants"].items())
    print(f"\nprofile rewrites: {rw['done']} ({variants})")
    print(f"  'reload failed' lines on rrdev's stderr: {st['reload_failed_lines']}")
    print(
        f"  valid versions seen in a 403 hint: {rw['valid_versions_seen']} "
        f"of {rw['valid_versions_seen'] + len(rw['valid_versions_not_seen'])}; written with "
        f"the JWKS server up, first seen after median {rw['seen_after_median_s']} s, "
        f"max {rw['seen_after_max_s']} s"
    )
    if rw["valid_versions_not_seen"]:
        print(f"  not seen: {', '.join(rw['valid_versions_not_seen'])}")
    print(f"  answers from an older profile than one already seen: {rw['regressions']}")
    print(
        f"  answers from a profile replaced over {LOAD_WINDOW:g} s before the request: "
        f"{rw['late_answers']}"
    )
    fp = s["final_probe"]
    print(
        f"  after the run: read {fp['read_status']}, profile v{fp['version']} answers "
        f"(expected: {' or '.join(f'v{v}' for v in rw['final_versions_acceptable'])})"
    )
    for line in st["suspicious_lines"]:
        print(f"  stderr: {line}")
    for line in st["other_lines"]:
        print(f"  stderr (other): {line}")

    print(f"\nJWKS outages ({s['jwks_fetches_total']} JWKS fetches in all):")
    for o in s["outages"]:
        print(
            f"  #{o['outage']} {o['down_s']:.1f}-{o['up_s']:.1f} s  token requests "
            f"{o['token_requests']}: {o['token_requests_answered_as_usual']} as usual, "
            f"{o['jwks_unavailable_503']} x 503; JWKS fetches in 2 s after restart "
            f"{o['jwks_fetches_2s_after_restart']}; rewrites inside: "
            f"{', '.join(o['rewrites_inside']) or '-'}"
        )

    pr = s["process"]
    b, a = pr["before"], pr["after"]
    rss_flag = "FAIL" if pr["rss_growth"] >= RSS_LIMIT else "ok"
    fd_flag = "FAIL" if pr["fd_growth"] > 0 else "ok"
    print(f"\nrrdev up (pid {pr['pid']})        before     after   growth")
    print(
        f"  RSS (KiB)            {b['rss_kib']:8} {a['rss_kib']:9} "
        f"{pr['rss_growth']:+8.1%}   {rss_flag}"
    )
    print(f"  open fds             {b['fds']:8} {a['fds']:9} {pr['fd_growth']:+8}   {fd_flag}")
    print(f"  threads              {b['threads']:8} {a['threads']:9}")
    for name in sorted(set(b["fd_kinds"]) | set(a["fd_kinds"])):
        print(f"    {name:<34} {b['fd_kinds'].get(name, 0):4} {a['fd_kinds'].get(name, 0):9}")
    print(f"\nresult: {s['result']}")
    for failure in s["failures"]:
        print(f"  - {failure}")
    if "work_dir" in s:
        print(f"  (profile and rrdev's output kept in {s['work_dir']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rewrites", type=int, default=50)
    parser.add_argument("--outages", type=int, default=4, help="JWKS server stops")
    parser.add_argument("--outage-seconds", type=float, default=2.0)
    parser.add_argument(
        "--min-gap",
        type=float,
        default=0.6,
        help="seconds between rewrites at least; the load is paced to match (0: full speed)",
    )
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--seconds-cap", type=float, default=300.0, help="the whole run")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--proxy-log",
        action="store_true",
        help="run rrdev up with --log-file (kept in the work directory, which is kept)",
    )
    args = parser.parse_args()

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # cleans up like Ctrl+C
    work = Path(tempfile.mkdtemp(prefix="rrdev-soak-"))
    procs: list[subprocess.Popen] = []
    try:
        summary = asyncio.run(
            asyncio.wait_for(soak(args, work, procs), timeout=args.seconds_cap + 120)
        )
    except TimeoutError:
        print(f"soak: gave up after {args.seconds_cap + 120:g} s; logs in {work}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"soak: interrupted; logs in {work}", file=sys.stderr)
        return 130
    finally:
        for proc in reversed(procs):
            stop_process(proc)
    if summary["result"] == "PASS" and not args.proxy_log:
        shutil.rmtree(work, ignore_errors=True)
        del summary["work_dir"]
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    return 0 if summary["result"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
