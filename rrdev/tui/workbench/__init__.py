"""The workbench: what the inspector does with traffic beyond showing it.

Pure modules (no Textual) hold the logic, unit-tested on their own: ``export`` (curl,
HAR, JSONL), ``logfile`` (reading ``rrdev up --log-file`` back), ``rule_hits`` (the
rules view's counts), ``navigation`` (refusals, sorting, filter history and
completion), ``requests`` and ``bench`` (what is sent, the current token). The
``*_view``/``*_screen`` modules, ``tokens`` and ``compose`` are the Textual screens over
them; ``actions`` (copy, export, rules, dry-run, navigation) and ``send_actions``
(token panel, compose/send/replay/edit, make-it-pass) are what the app's keys call.
"""
