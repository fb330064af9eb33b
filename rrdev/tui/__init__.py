"""``rrdev tui``: the interactive inspector (Textual).

Textual is imported only by this package's modules, and only when a command needs
them: ``rrdev.cli.gateway`` calls ``run_tui`` lazily, so ``rrdev explain`` never pays for
it.
``rrdev.tui.filters``, ``.store``, ``.runtime`` and ``.views`` import no Textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rrdev.tui.runtime import Runtime

__all__ = ["run_tui", "settle_heap"]

#: The collector's youngest-generation threshold in the TUI's processes (Python: 700).
GC_YOUNG_THRESHOLD = 5_000


def settle_heap() -> None:
    """Tune the cyclic garbage collector for a process that holds a steady stream of
    records: what exists now (modules, the app's widgets, the proxy's state) moves out
    of its scans for good (``gc.freeze``), and young objects are collected less often.
    Records are freed by reference counting either way (they hold no cycles); without
    this, a full collection scanned every kept record and stalled the UI's loop for a
    few hundred milliseconds under load. Call it once the process is set up."""
    import gc

    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


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
