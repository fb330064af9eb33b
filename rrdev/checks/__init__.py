"""Smoke checks: dry, live and against a running gateway, and their reports.

* ``engine``: ``run_checks``, the whole run: prepare every check, send it with a runner,
  judge the answer, stop once on a network failure.
* ``model``: the frozen values (``CheckOptions``, ``Expectation``, ``CheckRequest``,
  ``Outcome``, ``CheckResult``, ``ProfileReport``, ``CheckRun``) and the JSON report.
* ``tokens``: ``TokenSource`` (a check's token: fetched, minted or from ``${ENV}``),
  ``mint_identity`` and ``prepare`` (the request a check sends).
* ``dry``: ``DryRunner``, the default: ``explain.decide``, nothing forwarded.
* ``live``: ``LiveRunner``, ``--live``: through the profile's proxy, in-process.
* ``against``: ``AgainstRunner``, ``--against URL``: a running proxy or the deployed
  gateway, and ``outcome_from_response`` (what an HTTP answer says).
* ``coverage``: which rules the checks exercised.
* ``junit``: the JUnit XML report.
"""
