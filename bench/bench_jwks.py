"""The JWKS cache under a busy event loop: a cold cache with many waiters, and the
event-loop stall of a new cache's first fetch.

    python bench/bench_jwks.py [--waiters 100] [--busy-tasks 100] [--work-us 200]

Everything runs on one event loop, as in `rrdev up`: a loopback JWKS endpoint (aiohttp,
answering after 50 ms), --busy-tasks tasks standing in for the requests the proxy is
serving meanwhile (each does --work-us microseconds of work per loop turn), and
--waiters callers of `get_key` on an empty key cache. It prints

* how long after the fetch answered the first and the last waiter resumed: waiters
  released one loop turn at a time pay a turn of everyone else's work each;
* the longest the event loop stood still while a new cache made its first fetch
  (creating an HTTP client loads the trust store: 50-150 ms if done on the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrdev.clients.jwks import JwksCache  # noqa: E402


async def serve_jwks(delay: float) -> tuple[web.AppRunner, str, list[float]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "k1", "alg": "RS256"}
    answered: list[float] = []

    async def jwks(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        answered.append(time.perf_counter())
        return web.json_response({"keys": [jwk]})

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/jwks.json", answered


async def busy(stop: asyncio.Event, work_s: float) -> None:
    while not stop.is_set():
        end = time.perf_counter() + work_s
        while time.perf_counter() < end:
            pass
        await asyncio.sleep(0)


async def stall_ticker(stop: asyncio.Event, gaps: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def waiters_run(url: str, answered: list[float], args: argparse.Namespace) -> float:
    cache = JwksCache(url)
    stop = asyncio.Event()
    noise = [asyncio.ensure_future(busy(stop, args.work_us / 1e6)) for _ in range(args.busy_tasks)]
    done: list[float] = []

    async def waiter() -> None:
        await cache.get_key("k1", "RS256")
        done.append(time.perf_counter())

    answered.clear()
    await asyncio.gather(*(waiter() for _ in range(args.waiters)))
    stop.set()
    await asyncio.gather(*noise)
    await cache.aclose()
    return max(done) - answered[0]


async def stall_run(url: str) -> float:
    stop = asyncio.Event()
    gaps: list[float] = []
    ticker = asyncio.ensure_future(stall_ticker(stop, gaps))
    await asyncio.sleep(0.01)
    cache = JwksCache(url)
    await cache.get_key("k1", "RS256")
    stop.set()
    await ticker
    await cache.aclose()
    return max(gaps)


async def main(args: argparse.Namespace) -> None:
    runner, url, answered = await serve_jwks(0.05)
    try:
        last = [await waiters_run(url, answered, args) for _ in range(args.rounds)]
        stalls = [await stall_run(url) for _ in range(args.rounds)]
    finally:
        await runner.cleanup()
    print(
        f"{args.waiters} waiters on a cold cache, {args.busy_tasks} busy tasks x "
        f"{args.work_us} us per turn ({args.rounds} rounds)"
    )
    print(
        f"  last waiter resumed after the fetch: median {statistics.median(last) * 1000:.1f} ms, "
        f"max {max(last) * 1000:.1f} ms"
    )
    print(
        f"  longest event-loop stall during a new cache's first fetch: median "
        f"{statistics.median(stalls) * 1000:.1f} ms, max {max(stalls) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=100)
    parser.add_argument("--busy-tasks", type=int, default=100)
    parser.add_argument("--work-us", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
