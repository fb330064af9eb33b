"""The pipe between the TUI and its proxy process: frames, what they hold, errors.

No Textual here. One frame is a 4-byte big-endian length and a pickle (protocol 5).
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
import importlib
import io
import pickle
import struct
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from rrdev.core.errors import RrdevError

if TYPE_CHECKING:
    from rrdev.core.jwk import JwksStatus
    from rrdev.core.model import Profile
    from rrdev.servers.demo import DemoRequest
    from rrdev.servers.proxy import Overrides
    from rrdev.tui.runtime import RuntimeInfo

__all__ = [
    "FRAME_LIMIT",
    "RuntimeSpec",
    "Snapshot",
    "decode_error",
    "dumps",
    "encode_error",
    "read_frame",
    "write_frame",
]

#: A frame longer than this is a broken peer, not a batch (a batch is ~1 MB at most).
FRAME_LIMIT = 256 * 1024 * 1024
_HEADER = struct.Struct(">I")


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


# A profile's line index is a read-only mapping, which pickle cannot take on its own.
_DISPATCH = {**copyreg.dispatch_table, types.MappingProxyType: _reduce_mapping_proxy}


def dumps(value: object) -> bytes:
    """``value`` as one frame (length prefix included)."""
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(value)
    frame = buffer.getbuffer()
    frame[:4] = _HEADER.pack(len(frame) - 4)
    return bytes(frame)


def write_frame(writer: asyncio.StreamWriter, value: object) -> None:
    writer.write(dumps(value))


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next value; ``EOFError`` when the other side is gone (or cut a frame short)."""
    try:
        (size,) = _HEADER.unpack(await reader.readexactly(4))
        if size > FRAME_LIMIT:
            raise EOFError(f"a frame of {size} bytes: the peer is broken")
        return pickle.loads(await reader.readexactly(size))
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
