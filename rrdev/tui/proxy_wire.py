"""The pipe between the TUI and its proxy process: frames, what they hold, errors.

No Textual here. One frame is a header (the length, and a flag) and a pickle (protocol 5).
Pickle, not JSON: a record, a ``Profile`` or an ``Explanation`` is a tree of frozen
dataclasses that the other side needs back as the same objects, and rebuilding them
from JSON would cost the UI more than the pickle does. Both ends are this same
``rrdev`` (the child runs ``sys.executable`` with its parent's ``rrdev`` first on the
path), over a socket pair nobody else holds, so nothing foreign is ever unpickled.

What crosses: the runtime's spec (profile paths, overrides, ports), records (already
redacted where they are built: ``rrdev.servers.proxy.records``), notices, the
``Snapshot`` (the header's ``RuntimeInfo``, the key cache status, the profile in
force, the demo's requests) and the workbench's calls (``dry_run``, ``send``,
``explain``, ``send_demo_requests``) with their answers. A workbench request carries
the token the user put in it, as it does today between the app and its proxy thread;
private keys never cross (the UI loads the local keyset itself).
"""

from __future__ import annotations

import asyncio
import copyreg
import dataclasses
import importlib
import io
import operator
import pickle
import struct
import types
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any, Literal

from rrdev.core.errors import RrdevError

if TYPE_CHECKING:
    from rrdev.core.jwk import JwksStatus
    from rrdev.core.model import Profile
    from rrdev.core.records import Decision, RequestFacts, RequestRecord, Scope
    from rrdev.servers.demo import DemoRequest
    from rrdev.servers.proxy import Overrides
    from rrdev.tui.runtime import RuntimeInfo

__all__ = [
    "FRAME_LIMIT",
    "FrameDecoder",
    "FrameEncoder",
    "RuntimeSpec",
    "Snapshot",
    "decode_error",
    "dumps",
    "encode_error",
    "read_frame",
    "split_frames",
    "write_frame",
]

#: A frame longer than this is a broken peer, not a batch (a batch is ~1 MB at most).
FRAME_LIMIT = 256 * 1024 * 1024
#: A frame's header: the pickle's length, and 1 when the memo starts over.
_HEADER = struct.Struct(">IB")


@dataclass(frozen=True)
class RuntimeSpec:
    """What the proxy process serves: ``kind`` picks the runtime of
    ``rrdev.tui.runtime`` (``ProfileRuntime``, ``DemoRuntime``, ``AliasRuntime``)."""

    kind: Literal["profile", "demo", "aliases"]
    paths: tuple[str, ...] = ()
    overrides: Overrides | None = None
    host: str | None = None
    port: int | None = None
    reload_interval: float = 0.5
    issuer_port: int = 0
    backend_port: int = 0
    home: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """What the UI reads without waiting (``Runtime.info``, ``jwks_status``,
    ``profile``, ``demo_requests``): sent once the proxy listens and after a reload."""

    info: RuntimeInfo | None
    jwks: JwksStatus | None
    profile: Profile | None
    demo_requests: tuple[DemoRequest, ...] = ()


def _mapping_proxy(items: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(items)


def _reduce_mapping_proxy(value: types.MappingProxyType[Any, Any]) -> tuple[Any, ...]:
    return (_mapping_proxy, (dict(value),))


def _lazy_decision(
    allowed: bool,
    deciding: tuple[tuple[Scope, str], ...],
    token_condition_decided: bool,
    trace: bytes,
) -> Decision:
    from rrdev.core.records import Decision

    return Decision.lazy(allowed, deciding, token_condition_decided, partial(pickle.loads, trace))


def _record_from(values: tuple[Any, ...]) -> RequestRecord:
    from rrdev.core.records import RequestRecord

    record = RequestRecord.__new__(RequestRecord)
    record.__dict__.update(zip(_record_fields(), values, strict=True))
    return record


def _facts_from(values: tuple[Any, ...]) -> RequestFacts:
    from rrdev.core.records import RequestFacts

    facts = RequestFacts.__new__(RequestFacts)
    facts.__dict__.update(zip(_FACTS_FIELDS, values, strict=True))
    return facts


_FACTS_FIELDS = ("method", "path", "raw_path", "query", "headers")
#: A record's fields whose values repeat from one request to the next.
_REPEATING = frozenset({"path", "query", "request_headers", "response_headers", "notes"})


@cache
def _record_fields() -> tuple[str, ...]:
    from rrdev.core.records import RequestRecord

    return tuple(f.name for f in dataclasses.fields(RequestRecord))


class _Interner:
    """Equal values as one object, so that the memo sends a repeated header list
    (or path) once, and the UI keeps one copy of it. Bounded: it starts over."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._seen: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        seen = self._seen
        found = seen.get(value)
        if found is not None:
            return found
        if len(seen) >= self.limit:
            seen.clear()
        seen[value] = value
        return value


class _Reducers:
    """How records and their parts are pickled for the UI (``FrameEncoder``)."""

    def __init__(self) -> None:
        self.intern = _Interner()
        fields = _record_fields()
        self.values = operator.itemgetter(*fields)  # one C call for all the fields
        self.repeating = tuple(i for i, name in enumerate(fields) if name in _REPEATING)

    def table(self) -> dict[type, Any]:
        from rrdev.core.records import Decision, RequestFacts, RequestRecord

        # A profile's line index is a read-only mapping, which pickle cannot take alone.
        return {
            **copyreg.dispatch_table,
            types.MappingProxyType: _reduce_mapping_proxy,
            Decision: self.decision,
            RequestRecord: self.record,
            RequestFacts: self.facts,
        }

    def record(self, record: RequestRecord) -> tuple[Any, ...]:
        values = list(self.values(record.__dict__))
        intern = self.intern
        for index in self.repeating:
            values[index] = intern(values[index])
        return (_record_from, (tuple(values),))

    def decision(self, decision: Decision) -> tuple[Any, ...]:
        # The trace (most of a record's objects) travels as one pickled blob that the
        # UI opens only when something reads it (the detail pane, the rule hits): the
        # UI's cost per record stays small whether or not anyone looks. Equal traces
        # (the same request again) are one blob, sent once.
        trace = self.intern(pickle.dumps(decision.scopes, protocol=5))
        return (
            _lazy_decision,
            (decision.allowed, decision.deciding, decision.token_condition_decided, trace),
        )

    def facts(self, facts: RequestFacts) -> tuple[Any, ...]:
        intern = self.intern
        values = (
            facts.method,
            intern(facts.path),
            intern(facts.raw_path),
            intern(facts.query),
            intern(facts.headers),
        )
        return (_facts_from, (values,))


def dumps(value: object) -> bytes:
    """``value`` as one stand-alone frame (length prefix and flag included)."""
    return FrameEncoder(reset_every=1).encode(value)


class FrameEncoder:
    """Pickles the frames of one stream with one memo kept across frames: an object
    already sent (a verified token's ``Verification``, shared by every request with
    that token) goes again as a reference of a few bytes. Every ``reset_every`` frames
    the memo starts over (it keeps what it saw alive); the frame's flag tells the
    ``FrameDecoder`` to start over too."""

    def __init__(self, reset_every: int = 32) -> None:
        self.reset_every = reset_every
        self._buffer = io.BytesIO()
        self._pickler: pickle.Pickler | None = None
        self._frames = 0
        self._dispatch = _Reducers().table()

    def encode(self, value: object) -> bytes:
        pickler = self._pickler
        fresh = pickler is None or self._frames >= self.reset_every
        if pickler is None or fresh:
            pickler = self._pickler = pickle.Pickler(self._buffer, protocol=5)
            pickler.dispatch_table = self._dispatch
            self._frames = 0
        self._frames += 1
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        buffer.write(bytes(_HEADER.size))
        pickler.dump(value)
        data = bytearray(buffer.getvalue())
        data[: _HEADER.size] = _HEADER.pack(len(data) - _HEADER.size, int(fresh))
        return bytes(data)


class FrameDecoder:
    """Reads what a ``FrameEncoder`` wrote, one frame at a time, in order."""

    def __init__(self) -> None:
        self._source = io.BytesIO()
        self._unpickler: pickle.Unpickler | None = None

    async def read(self, reader: asyncio.StreamReader) -> Any:
        """The next value; ``EOFError`` when the other side is gone (or cut a frame
        short)."""
        size, fresh = await _read_header(reader)
        return self.load(await _read_exactly(reader, size), fresh=bool(fresh))

    def load(self, payload: bytes, *, fresh: bool) -> Any:
        """One frame's pickle (its header read apart: ``fresh`` is its flag)."""
        source = self._source
        if fresh or self._unpickler is None:
            self._unpickler = pickle.Unpickler(source)
        source.seek(0)
        source.truncate()
        source.write(payload)
        source.seek(0)
        return self._unpickler.load()


def split_frames(data: bytes) -> list[tuple[bytes, bool]]:
    """Whole frames back to (pickle, fresh) pairs, for ``FrameDecoder.load``."""
    frames, at = [], 0
    while at < len(data):
        size, fresh = _HEADER.unpack_from(data, at)
        at += _HEADER.size
        frames.append((data[at : at + size], bool(fresh)))
        at += size
    return frames


def write_frame(writer: asyncio.StreamWriter, value: object) -> None:
    writer.write(dumps(value))


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next stand-alone frame's value (``FrameDecoder`` for a stream of them)."""
    size, _fresh = await _read_header(reader)
    return pickle.loads(await _read_exactly(reader, size))


async def _read_header(reader: asyncio.StreamReader) -> tuple[int, int]:
    size, fresh = _HEADER.unpack(await _read_exactly(reader, _HEADER.size))
    if size > FRAME_LIMIT:
        raise EOFError(f"a frame of {size} bytes: the peer is broken")
    return size, fresh


async def _read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    try:
        return await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise EOFError(str(exc)) from None


def encode_error(exc: BaseException) -> tuple[str, str, str, str, int, dict[str, Any]]:
    """An ``RrdevError`` as plain values (its class by name), for ``decode_error``."""
    if isinstance(exc, RrdevError):
        extra = {k: v for k, v in vars(exc).items() if isinstance(v, (str, int, type(None)))}
        cls = type(exc)
        return (cls.__module__, cls.__qualname__, exc.message, exc.hint, exc.exit_code, extra)
    message = f"{type(exc).__name__}: {exc}"
    return ("rrdev.core.errors", "RrdevError", message, "", 1, {})


def decode_error(encoded: tuple[str, str, str, str, int, dict[str, Any]]) -> RrdevError:
    """The child's ``RrdevError`` again, of the same class when it is an rrdev one
    (``PortInUse`` stays ``PortInUse``, exit code 3)."""
    module, name, message, hint, exit_code, extra = encoded
    cls: type[RrdevError] = RrdevError
    if module.startswith("rrdev."):
        found = getattr(importlib.import_module(module), name, None)
        if isinstance(found, type) and issubclass(found, RrdevError):
            cls = found
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(extra)
    error.message, error.hint, error.exit_code = message, hint, exit_code
    return error
