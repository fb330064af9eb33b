"""The gateway round trip, pure: a profile <-> the gateway's JSON payloads.

- ``fields``: which profile key is which gateway field (and the assumptions made where
  the gateway's documentation is silent).
- ``payloads``: ``export_profile``, a profile -> its create payloads in dependency order.
- ``setup``: ``GatewaySetup``, one proxy as the gateway holds it, read from an export
  document or from the API's list answers.
- ``rule_tables``: rules between JSON and TOML, and the normal form that compares them.
- ``document``: a setup -> a commented TOML profile, fresh or merged into a file.
- ``plan``: what ``push`` would change: create / update / unchanged / replace.

No I/O here: ``rrdev.clients.gateway`` talks to the API, ``rrdev.cli.sync`` to people.
"""

from __future__ import annotations
