"""``rrdev tui``: the interactive inspector (Textual).

Textual is imported only by this package's modules, and only when a command needs
them: ``rrdev.cli.gateway`` calls ``run_tui`` lazily, so ``rrdev explain`` never pays for
it.
``rrdev.tui.filters``, ``.store``, ``.runtime`` and ``.views`` import no Textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rrdev.servers.heap import settle_heap

if TYPE_CHECKING:
    from rrdev.tui.runtime import Runtime

__all__ = ["run_tui", "settle_heap"]

_SETTLE_AFTER_SECONDS = 2.0


def run_tui(runtime: Runtime, *, demo_traffic: bool = True) -> int:
    """Run the inspector around ``runtime`` until the user quits; returns the exit code.

    The proxy starts (in its own process, or on its own thread) before the app takes
    the terminal, so a port in use (``PortInUse``, exit code 3) or any other
    ``RrdevError`` is raised here with the terminal untouched.
    """
    import asyncio

    from rrdev.tui.app import RrdevApp

    async def main() -> int:
        app = RrdevApp(runtime, demo_traffic=demo_traffic)
        try:
            await app.start_runtime()
        except BaseException:
            await runtime.stop()
            raise
        # Once the screen is up (its widgets are long-lived too).
        settle = asyncio.get_running_loop().call_later(_SETTLE_AFTER_SECONDS, settle_heap)
        try:
            await app.run_async()  # its unmount stops the runtime
        finally:
            settle.cancel()
        return app.return_code or 0

    return asyncio.run(main())
