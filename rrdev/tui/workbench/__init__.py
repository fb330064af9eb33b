"""The workbench: what the inspector does with traffic beyond showing it.

Pure modules (no Textual) hold the logic, unit-tested on their own: ``export`` (curl,
HAR, JSONL), ``logfile`` (reading ``rrdev up --log-file`` back), ``rule_hits`` (the
rules view's counts), ``navigation`` (refusals, sorting, filter history and
completion). The ``*_view``/``*_screen`` modules are the Textual screens over them.
"""
