"""The workbench: the token panel, compose/send/replay/edit, and make-it-pass.

``requests`` and ``bench`` are pure (no Textual); ``tokens`` and ``compose`` are the
screens; ``actions`` is what the app's keys call.
"""
