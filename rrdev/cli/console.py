"""Front-end plumbing shared by the long-running commands (`up`, `up --demo`,
`issuer serve`): the event loop, Ctrl+C handling, error lines and request output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from rrdev.core.errors import RrdevError

if TYPE_CHECKING:
    from rrdev.core.records import RequestRecord

__all__ = [
    "Output",
    "TrimmedLines",
    "install_stop_handlers",
    "make_console",
    "open_log",
    "print_error",
    "run_foreground",
    "run_loop",
]

#: Width for output that is not a terminal (a pipe, a file, a CI log): rich would
#: hard-wrap at 80 columns and break table cells and hints mid-word.
PIPE_WIDTH = 240


def make_console(*, stderr: bool = False, soft_wrap: bool = False) -> Console:
    """A Console for rrdev's output: no emoji codes or highlighting applied to
    user text, and no 80-column hard wrap when the stream is not a terminal
    (``COLUMNS`` still wins). Lines sent to a pipe or file lose the spaces Rich pads
    them with to the console's width."""
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    piped = not terminal and "COLUMNS" not in os.environ
    return Console(
        file=stream if terminal else TrimmedLines(stream),
        highlight=False,
        emoji=False,
        soft_wrap=soft_wrap,
        width=PIPE_WIDTH if piped else None,
    )


#: A colour code at the end of a text: kept when the blanks around it go.
_ESCAPE_AT_END = re.compile(r"\x1b\[[0-9;]*m\Z")


def _split_tail(text: str) -> tuple[str, str]:
    """``text`` as (content, tail): the tail is its trailing run of blanks and colour
    codes. Linear: a regex over long runs of blanks would backtrack."""
    end = len(text)
    while True:
        stripped = text[:end].rstrip(" \t")
        code = _ESCAPE_AT_END.search(stripped)
        if code is None:
            return stripped, text[len(stripped) :]
        end = code.start()


def _trimmed(line: str) -> str:
    content, tail = _split_tail(line)
    return content + "".join(re.findall(r"\x1b\[[0-9;]*m", tail))


class TrimmedLines:
    """A text stream that drops each line's trailing blanks on their way to ``stream``.

    Rich pads table and panel lines to the console's width; in a pipe that is up to
    ``PIPE_WIDTH`` spaces per line for ``grep``, ``diff`` and CI logs to carry. Blanks at
    the end of what is written so far wait for the next write: only a newline shows
    whether they end a line. Colour codes among the blanks are kept.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._held = ""

    def write(self, text: str) -> int:
        *complete, last = (self._held + text).split("\n")
        content, tail = _split_tail(last)
        if " " not in tail and "\t" not in tail:
            content, tail = last, ""
        self._held = tail
        self._stream.write("".join(_trimmed(line) + "\n" for line in complete) + content)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


STOP_NOTICE = "stopping: finishing requests in flight (Ctrl+C again to quit now)"


def run_foreground(
    out: Console,
    err: Console,
    serve: Callable[[Output], Coroutine[Any, Any, int]],
    *,
    log_file: str | None = None,
    quiet: bool = False,
    ready: bool = True,
) -> int:
    """Run ``serve(output)`` to completion and return its exit code: an RrdevError is
    one error line and its exit code, Ctrl+C before the handlers are in place is 0,
    and the JSONL log is closed whatever happens."""
    output: Output | None = None
    try:
        output = Output(out, err, open_log(log_file), quiet, ready=ready)
        return run_loop(serve(output))
    except RrdevError as exc:
        print_error(err, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
    finally:
        if output is not None:
            output.close()


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` to completion on uvloop when available (uvicorn[standard] has it)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def install_stop_handlers(
    request_stop: Callable[..., None],
    stopping: Callable[[], bool],
    notify: Callable[[], None],
) -> list[int]:
    """Ctrl+C (or SIGTERM) once: ``notify()`` and stop gracefully; twice: force.
    Returns the signals handled (remove them with ``loop.remove_signal_handler``)."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if stopping():
            request_stop(force=True)
            return
        notify()
        request_stop()

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
            continue
        handled.append(sig)
    return handled


def print_error(err: Console, exc: RrdevError) -> None:
    """One line, ``error: message (hint)``; a multi-line hint (an example) follows it."""
    line = Text.assemble(("error: ", "bold red"), exc.message)
    if exc.hint and "\n" not in exc.hint:
        line.append(f" ({exc.hint})", style="cyan")
    err.print(line)
    if exc.hint and "\n" in exc.hint:
        err.print(Text.assemble(("hint: ", "cyan"), exc.hint))


def open_log(path: str | None) -> IO[str] | None:
    if not path:
        return None
    try:
        return open(path, "a", buffering=1, encoding="utf-8")
    except OSError as exc:
        raise RrdevError(f"cannot open log file {path}: {exc.strerror}") from None


#: The JWKS cache's outage notices (``rrdev.clients.jwks``): label and style.
_JWKS_OUTAGE = {
    "jwks_stale": ("warning: JWKS stale", "bold yellow"),
    "jwks_unavailable": ("JWKS unavailable", "bold red"),
    "jwks_recovered": ("JWKS recovered", "bold green"),
}


class Output:
    """Where the banner, records and notices go: the console and the JSONL log."""

    def __init__(
        self, out: Console, err: Console, log: IO[str] | None, quiet: bool, *, ready: bool = True
    ) -> None:
        self.out = out
        self.err = err
        self.log = log
        self.quiet = quiet
        #: the demo's token fetches behind its banner are not news: it sets this after
        self.ready = ready

    def write(self, text: str) -> None:
        # Plain text on purpose: rich would wrap a long token at the terminal's width.
        self.out.file.write(text + "\n")
        self.out.file.flush()

    def note(self, message: str) -> None:
        self.out.print(Text(message, style="dim"))

    @property
    def reads_records(self) -> bool:
        """False with ``--quiet`` and no log file: nobody reads a record, so the proxy
        need not build one."""
        return self.log is not None or not self.quiet

    def record(self, record: RequestRecord) -> None:
        if self.log is not None:
            self.log.write(json.dumps(record.to_dict(), default=str) + "\n")
        if not self.quiet:
            from rrdev.cli.render import request_line

            self.out.print(request_line(record))

    def event(self, kind: str, message: str) -> None:
        if kind in ("token_issued", "keyset_reloaded", "reloaded", "jwks_changed"):
            if not self.quiet and self.ready:
                label = kind.replace("_", " ").replace("jwks", "JWKS")
                self.out.print(Text.assemble((f"{label}: ", "bold green"), message))
        elif kind == "token_refused":
            if not self.quiet and self.ready:
                self.out.print(Text.assemble(("token refused: ", "bold yellow"), message))
        elif kind in _JWKS_OUTAGE:
            # Outage notices go to stderr even with --quiet: they change what callers get.
            label, style = _JWKS_OUTAGE[kind]
            self.err.print(Text.assemble((f"{label}: ", style), message))
        elif kind == "jwks_key_ignored":  # a warning about the issuer's keys, even when quiet
            self.err.print(Text.assemble(("jwks key ignored: ", "bold yellow"), message))
        else:
            self.err.print(Text.assemble((f"{kind.replace('_', ' ')}: ", "bold red"), message))

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
        with contextlib.suppress(Exception):
            sys.stdout.flush()
