"""What the benchmark needs, installed at benchmark time only (never by the tests or CI):
Debian's wrk and nginx, node and the Node peer's npm packages, and mitmproxy in its own
virtual environment under ``bench/.cache/`` (it pins versions rrdev does not use).
Each step says what it installs; nothing is installed when it is already there."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["BENCH", "MITMDUMP", "NODE_PEER", "ensure_base", "ensure_peers", "find_nginx"]

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
MITM_VENV = CACHE / "mitmproxy-venv"
MITMDUMP = MITM_VENV / "bin" / "mitmdump"
NODE_PEER = BENCH / "node_peer"


def _say(message: str) -> None:
    print(f"[setup] {message}", file=sys.stderr, flush=True)


def _run(argv: list[str], cwd: Path | None = None) -> None:
    _say(" ".join(argv))
    subprocess.run(argv, cwd=cwd, check=True, stdout=sys.stderr)


def find_nginx() -> str | None:
    # /usr/sbin is not on every PATH (a non-root shell's, for one).
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def _apt_install(packages: list[str]) -> None:
    _say(f"missing: installing Debian packages {', '.join(packages)}")
    _run(["apt-get", "update", "-qq"])
    _run(["apt-get", "install", "-y", "-qq", *packages])


def ensure_base() -> None:
    """wrk and nginx, from Debian when missing (nginx-light: the smallest build)."""
    missing = [pkg for tool, pkg in (("wrk", "wrk"), ("nginx", "nginx-light")) if not _has(tool)]
    if missing:
        _apt_install(missing)


def _has(tool: str) -> bool:
    return (find_nginx() if tool == "nginx" else shutil.which(tool)) is not None


def ensure_peers() -> None:
    """node + the Node peer's packages, and mitmproxy's virtual environment."""
    if not (shutil.which("node") and shutil.which("npm")):
        _apt_install(["nodejs", "npm"])
    if not (NODE_PEER / "node_modules" / "express").is_dir():
        _say("installing the Node peer's npm packages (bench/node_peer/node_modules)")
        lock = (NODE_PEER / "package-lock.json").exists()
        _run(["npm", "ci" if lock else "install", "--no-audit", "--no-fund"], cwd=NODE_PEER)
    if not MITMDUMP.exists():
        _say(f"installing mitmproxy into its own virtual environment ({MITM_VENV})")
        _run([sys.executable, "-m", "venv", str(MITM_VENV)])
        _run([str(MITM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "mitmproxy"])
