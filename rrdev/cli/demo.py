"""``rrdev up --demo``: the offline demo in the foreground, with a banner to follow.

The front end around ``rrdev.servers.demo.start_demo``: start the issuer, the echo
backend and the proxy, print where each listens, four ready-to-paste requests and a fifth
curl that gets a token of your own (curl lines are printed unwrapped, so a token is
always one line), then one line per request until Ctrl+C (which drains in-flight
requests and exits 0). A port in use is a one-line error and exit 3.

"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.console import Console

from rrdev.cli.console import (
    STOP_NOTICE,
    Output,
    install_stop_handlers,
    make_console,
    run_foreground,
)

if TYPE_CHECKING:
    from rrdev.servers.demo import DemoHandle

__all__ = ["banner_text", "run_demo"]


def run_demo(
    *,
    host: str = "127.0.0.1",
    proxy_port: int = 8787,
    issuer_port: int = 8788,
    backend_port: int = 8789,
    quiet: bool = False,
    log_file: str | None = None,
    console: Console | None = None,
) -> int:
    """Run the demo until interrupted; returns the exit code (0 after Ctrl+C, 3 for a
    port in use or a corrupt keyset)."""
    out = console or make_console(soft_wrap=True)
    err = console or make_console(stderr=True, soft_wrap=True)
    return run_foreground(
        out,
        err,
        lambda output: _serve(output, host, (proxy_port, issuer_port, backend_port)),
        log_file=log_file,
        quiet=quiet,
        ready=False,
    )


async def _serve(output: Output, host: str, ports: tuple[int, int, int]) -> int:
    from rrdev.servers.demo import start_demo

    proxy_port, issuer_port, backend_port = ports
    handle = await start_demo(
        host=host,
        proxy_port=proxy_port,
        issuer_port=issuer_port,
        backend_port=backend_port,
        sink=output.record,
        on_event=output.event,
    )
    try:
        output.write(banner_text(handle))
        output.ready = True
        handled = install_stop_handlers(
            handle.request_stop, lambda: handle.stopping, lambda: output.note(STOP_NOTICE)
        )
        try:
            await handle.wait()
        finally:
            loop = asyncio.get_running_loop()
            for sig in handled:
                loop.remove_signal_handler(sig)
    finally:
        await handle.stop(force=True)
    return 0


# ------------------------------------------------------------------ the banner


def banner_text(handle: DemoHandle) -> str:
    """The banner as plain text: printed as is, so nothing (a token) is ever wrapped."""
    from rrdev.servers.demo import ADMIN_CLIENT, demo_requests

    admin = handle.issuer_app.clients[ADMIN_CLIENT]
    lines = [
        "rrdev demo: a JWT-verifying proxy, a local Auth0-style issuer and a backend, "
        "all on this machine, no account needed.",
        "",
        f"  proxy     {handle.proxy_url}    (profile: -p demo, e.g. rrdev explain -p demo "
        "TOKEN; rrdev demo profile prints it)",
        f"  issuer    {handle.issuer_url}    (iss {handle.issuer}; discovery "
        f"{handle.discovery_url})",
        f"  backend   {handle.backend_url}    (an echo server)",
        f"  audience  {handle.audience}",
        "",
        "Try these four requests:",
    ]
    for number, request in enumerate(demo_requests(handle), 1):
        expected = f"{request.expected_status} {request.expected_reason}"
        if request.expected_rule and request.expected_status != 200:
            expected += f" ({request.expected_rule})"
        lines += [
            "",
            f"{number}. {request.title}  ->  expect {expected}",
            f"   {request.curl}",
        ]
    lines += [
        "",
        f"Get a token of your own ({ADMIN_CLIENT} may also delete; these demo secrets are public):",
        "",
        f"   curl -s {handle.token_url} -d grant_type=client_credentials "
        f"-d client_id={admin.client_id} -d client_secret={admin.secret} "
        f"-d audience={handle.audience}",
        "",
        "Ctrl+C to stop. One line per request follows.",
        "",
    ]
    return "\n".join(lines)
