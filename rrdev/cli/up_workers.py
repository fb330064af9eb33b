"""``rrdev up --workers N``, the parent's side of the console: what the workers report
(``rrdev.servers.workers``) becomes the same request lines, log lines and notices as
without workers.

The parent is the one writer: each worker's log record arrives as one whole JSON line
and is appended as it came; request lines say which worker served them (``w2``); a
notice several workers report alike (a reload, a broken edit, a JWKS change) is printed
once, not once per worker.
"""

from __future__ import annotations

import json
from collections import OrderedDict

from rrdev.cli.console import Output
from rrdev.cli.render import request_line
from rrdev.core.record_line import RecordLine

__all__ = ["NoticeOnce", "WorkerRelay"]


class NoticeOnce:
    """Say a notice once for all workers: the first worker to report it prints it; the
    same notice from the others is dropped until one of them reports it again (a new
    occurrence: the same broken edit made twice is said twice)."""

    #: notices remembered (oldest forgotten first): messages with a countdown vary
    LIMIT = 256

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str], set[int]] = OrderedDict()

    def first(self, worker: int, kind: str, message: str) -> bool:
        key = (kind, message)
        seen = self._seen.get(key)
        if seen is not None and worker not in seen:
            seen.add(worker)
            return False
        self._seen.pop(key, None)
        self._seen[key] = {worker}
        while len(self._seen) > self.LIMIT:
            self._seen.popitem(last=False)
        return True


class WorkerRelay:
    """``WorkerPool``'s ``on_message``: a worker's "line", "log" and "event" messages
    onto ``output`` (console and --log-file).

    A worker serves as soon as it is up, before the others are and the banner is out:
    its lines and notices are held until ``release()`` (after the banner); log lines
    are written at once.
    """

    def __init__(self, output: Output) -> None:
        self.output = output
        self.notices = NoticeOnce()
        self._held: list[tuple[int, str, bytes]] | None = []

    def __call__(self, worker: int, kind: str, payload: bytes) -> None:
        if kind == "log":
            self._log(payload)
        elif self._held is not None:
            self._held.append((worker, kind, payload))
        elif kind == "line":
            self._line(worker, payload)
        elif kind == "event":
            self._event(worker, payload)

    def release(self) -> None:
        """Print what was held, and from now on each message as it comes."""
        held, self._held = self._held or [], None
        for message in held:
            self(*message)

    def _log(self, payload: bytes) -> None:
        if self.output.log is not None:
            # Already JSON, ASCII and one line: appended whole, in one write.
            self.output.log.write(payload.decode("ascii", "replace") + "\n")

    def _line(self, worker: int, payload: bytes) -> None:
        if self.output.quiet:
            return
        line = RecordLine.from_dict(json.loads(payload))
        self.output.out.print(request_line(line, worker=worker))

    def _event(self, worker: int, payload: bytes) -> None:
        data = json.loads(payload)
        kind, message = str(data.get("kind")), str(data.get("message"))
        if self.notices.first(worker, kind, message):
            self.output.event(kind, message)
