"""The Typer front end: one module per command group, plus rendering and console plumbing.

* ``app``: the Typer app, its callback and the order of its commands (``main`` is the
  console script).
* Commands, each importing only Typer at module level: ``explain``; ``gateway`` (``up``,
  ``tui``); ``profiles`` (``init``, ``validate``, ``check``); ``token_app`` (``token
  decode|mint|fetch|clear``); ``issuer`` (``issuer serve|rotate|jwks``). ``options``
  holds the options they share, ``common`` the consoles and ``fail``/``friendly``.
* What the commands hand over to, imported when one runs: ``up`` (``rrdev up``),
  ``demo`` (``up --demo``), ``token`` (``token fetch|clear``, ``explain --auth``),
  ``check`` (``rrdev check``'s report); ``render`` and ``console`` draw and print.
"""
