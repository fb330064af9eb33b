"""The scenarios: what each one starts, and what its sanity check may expect.

Every scenario serves GET /api/v1/products from the same nginx backend on loopback.
``jwt`` scenarios are sent the same valid RS256 token on every request and must refuse
a missing token and a bad signature with 401; ``injects`` scenarios must hand the
backend its own bearer token instead of the caller's.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.prepare import MITMDUMP, NODE_PEER
from bench.procs import Server, wait_for_port
from bench.world import BACKEND_TOKEN, PROFILE_NONE, ROOT, SEED_PROFILE, World

__all__ = ["SCENARIOS", "Scenario", "TmuxServer", "workers_available"]


@dataclass(frozen=True)
class Scenario:
    """One row of the table: how to start it and what its sanity check expects."""

    name: str
    description: str
    #: Starts its server on a port; None for direct (the backend itself, already up).
    start: Callable[[World, int], Server] | None
    jwt: bool = True
    injects: bool = True
    peer: bool = False
    #: Why it cannot run here (checked before starting), or None.
    unavailable: Callable[[World], str | None] = lambda world: None


def _yardstick(world: World, port: int) -> Server:
    argv = [
        *(sys.executable, str(ROOT / "bench" / "yardstick.py")),
        *("--port", str(port), "--upstream", world.backend_url, "--jwks", str(world.jwks_file)),
        *("--issuer", world.issuer, "--audience", world.audience),
        *("--backend-token", BACKEND_TOKEN),
    ]
    return Server.start("yardstick", argv, port, world.work / "yardstick.log", world.env())


def _rrdev_jwt_args(world: World, port: int) -> list[str]:
    return [
        *(str(SEED_PROFILE), "--port", str(port), "--target", world.backend_url),
        *("--jwks", str(world.jwks_file)),
    ]


def _rrdev_none(world: World, port: int) -> Server:
    profile = world.work / "none.toml"
    profile.write_text(PROFILE_NONE.format(port=world.backend_port))
    argv = world.rrdev("up", str(profile), "--port", str(port), "--quiet")
    return Server.start("rrdev-none", argv, port, world.work / "rrdev-none.log", world.env())


def _rrdev_jwt(world: World, port: int) -> Server:
    argv = world.rrdev("up", *_rrdev_jwt_args(world, port), "--quiet")
    return Server.start("rrdev-jwt", argv, port, world.work / "rrdev-jwt.log", world.env())


def workers_available(world: World) -> str | None:
    """``rrdev up --workers`` comes with another branch of issue 12: detect it."""
    done = subprocess.run(
        world.rrdev("up", "--help"), capture_output=True, text=True, env=world.env()
    )
    return None if "--workers" in done.stdout else "not available (rrdev up has no --workers)"


def _rrdev_workers(world: World, port: int) -> Server:
    argv = world.rrdev("up", *_rrdev_jwt_args(world, port), "--quiet", "--workers", "2")
    return Server.start("rrdev-workers", argv, port, world.work / "rrdev-workers.log", world.env())


class TmuxServer(Server):
    """``rrdev tui`` in a detached tmux session on its own tmux socket (so the harness
    never touches anyone's sessions); the pane's process is the server."""

    socket_name: str = ""

    @property
    def pid(self) -> int:
        out = self.tmux("list-panes", "-F", "#{pane_pid}")
        return int(out.split()[0])

    def tmux(self, *args: str) -> str:
        argv = ["tmux", "-L", self.socket_name, *args]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def wait_ready(self, timeout: float = 60) -> None:
        try:
            wait_for_port(self.port, None, timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{self.name}: {exc}\n{self.screen()}") from None

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(subprocess.CalledProcessError):
            return self.screen()
        return ""

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.keys("q")
            time.sleep(1)
            self.tmux("kill-server")


def _tui_unavailable(world: World) -> str | None:
    return None if shutil.which("tmux") else "not available (needs tmux)"


def _rrdev_tui(world: World, port: int) -> Server:
    socket_name = f"rrdev-bench-{port}"
    cmd = shlex.join(world.rrdev("tui", *_rrdev_jwt_args(world, port)))
    argv = ["tmux", "-L", socket_name, "new-session", "-d", "-x", "140", "-y", "40", cmd]
    # A new tmux server takes this environment; `new-session -d` returns at once.
    started = subprocess.Popen(argv, env=world.env())
    started.wait(timeout=30)
    server = TmuxServer("rrdev-tui", started, port, world.work / "rrdev-tui.log")
    server.socket_name = socket_name
    return server


def _node_unavailable(world: World) -> str | None:
    ok = (NODE_PEER / "node_modules" / "express").is_dir() and shutil.which("node")
    return None if ok else "not available (run python -m bench setup --peers)"


def _node(world: World, port: int) -> Server:
    argv = [
        *("node", str(NODE_PEER / "server.js"), "--port", str(port)),
        *("--upstream", world.backend_url, "--jwks-uri", world.jwks_url),
        *("--issuer", world.issuer, "--audience", world.audience),
        *("--backend-token", BACKEND_TOKEN),
    ]
    return Server.start("node", argv, port, world.work / "node.log", world.env())


def _mitm_unavailable(world: World) -> str | None:
    return None if MITMDUMP.exists() else "not available (run python -m bench setup --peers)"


def _mitmproxy(world: World, port: int) -> Server:
    confdir = Path(world.work / "mitmproxy")
    argv = [
        *(str(MITMDUMP), "--mode", f"reverse:{world.backend_url}"),
        *("--listen-host", "127.0.0.1", "--listen-port", str(port), "-q"),
        *("--set", f"confdir={confdir}"),
        # No JWT at all; the backend's bearer injected as the other proxies do.
        *("--modify-headers", f"/~q/Authorization/Bearer {BACKEND_TOKEN}"),
    ]
    return Server.start("mitmproxy", argv, port, world.work / "mitmproxy.log")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("direct", "nginx answering 90 B of JSON, no proxy", None, jwt=False, injects=False),
    Scenario("yardstick", "bench/yardstick.py: raw ASGI + token cache + aiohttp", _yardstick),
    Scenario(
        "rrdev none", "rrdev up --quiet, auth_type none, bearer injected", _rrdev_none, jwt=False
    ),
    Scenario("rrdev jwt", "rrdev up --quiet, jwtVerify + the seed's 3 rules", _rrdev_jwt),
    Scenario(
        "rrdev workers=2",
        "as rrdev jwt, with --workers 2",
        _rrdev_workers,
        unavailable=workers_available,
    ),
    Scenario(
        "rrdev tui",
        "rrdev tui under tmux, as rrdev jwt",
        _rrdev_tui,
        unavailable=_tui_unavailable,
    ),
    Scenario(
        "node peer",
        "express 5 + express-oauth2-jwt-bearer + http-proxy-middleware",
        _node,
        peer=True,
        unavailable=_node_unavailable,
    ),
    Scenario(
        "mitmproxy",
        "mitmdump reverse mode, no JWT, bearer injected",
        _mitmproxy,
        jwt=False,
        peer=True,
        unavailable=_mitm_unavailable,
    ),
)
