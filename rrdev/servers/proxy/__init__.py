"""The forwarding proxy behind ``rrdev up``: authenticate -> rules -> forward -> record.

``flow`` tells one request end to end; the other modules each hold one part of it:

- ``flow``: ``ProxyApp``, the ASGI app (HTTP, WebSocket refusal, lifespan) and the
  per-request pipeline; ``RecordSink`` and ``EventCallback``.
- ``forward``: ``Forwarder``, the pooled aiohttp session; an allowed request streamed to
  the backend and its answer streamed back; the ``oauth2`` backend token per request.
- ``headers``: header and query rewriting both ways (hop-by-hop, ``X-Forwarded-*``,
  Authorization, the target credential, ``additional_headers`` templates).
- ``answers``: the answers rrdev makes itself (JSON 4xx/5xx bodies, ``WWW-Authenticate``,
  the ``requestrocket-proxy-*`` gateway headers) and the framing checks before them.
- ``records``: the per-request ``_Progress`` and the redacted ``RequestRecord`` built
  from it.
- ``request``: the request target and header bytes as text (``REQUEST_TARGET``).
- ``state``: ``Overrides``, ``ProxyInfo`` and everything built once per loaded profile.
- ``credential``: the target credential resolved from the profile.
- ``reload``: ``ProfileReloader``, the state in force and its hot reload.
- ``verifiers``: ``CachingVerifier`` and the per-request verification stopwatch.
- ``rules_worker``: ``RulesWorker``, the one thread heavy rule evaluations run on.
- ``aliases``: ``AliasDispatcher``, several profiles on one port, each at
  ``{alias}.localhost`` (never in the path of a single profile).

Other layers import the names below from this package, not from its modules.
"""

from __future__ import annotations

from rrdev.servers.proxy.aliases import AliasDispatcher
from rrdev.servers.proxy.answers import MAX_HEADER_BYTES, MAX_HEADER_LINES
from rrdev.servers.proxy.flow import EventCallback, ProxyApp, RecordSink
from rrdev.servers.proxy.request import REQUEST_TARGET
from rrdev.servers.proxy.state import Overrides, ProxyInfo
from rrdev.servers.proxy.verifiers import CachingVerifier

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_HEADER_LINES",
    "REQUEST_TARGET",
    "AliasDispatcher",
    "CachingVerifier",
    "EventCallback",
    "Overrides",
    "ProxyApp",
    "ProxyInfo",
    "RecordSink",
]
