"""The JUnit XML report (``rrdev check --junit FILE``), as CI systems read it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

from rrdev.checks.model import CheckResult, CheckRun, ProfileReport
from rrdev.core.errors import RrdevError

__all__ = ["describe_failure", "junit_xml", "write_junit"]

_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def describe_failure(result: CheckResult) -> str:
    """Plain text for a failed check: what differed, then rrdev's explanation."""
    lines = [f"{result.name} ({result.where}): {result.method} {result.target}"]
    lines += [f"  {p}" for p in result.problems]
    lines += [f"  note: {n}" for n in result.notes]
    expl = result.outcome.explanation
    if expl is not None:
        lines.append(f"  got {expl.status} {expl.reason}: {expl.message}")
        if expl.hint:
            lines.append(f"  hint: {expl.hint}")
        if expl.deciding_rule:
            lines.append(f"  deciding rule: {expl.deciding_rule}")
    elif result.outcome.message:
        lines.append(f"  gateway: {result.outcome.message}")
    return "\n".join(lines)


def junit_xml(
    run: CheckRun, *, details: Callable[[CheckResult], str] = describe_failure
) -> ET.Element:
    """JUnit XML as CI systems read it: one ``<testsuite>`` per profile, one
    ``<testcase>`` per check (``classname`` = the profile's name), a ``<failure>``
    (message + explanation text) for each failed check. With ``require_coverage``, a
    "rule coverage" testcase per profile fails when a rule is unexercised."""
    root = ET.Element("testsuites", name="rrdev check")
    total = failures = 0
    seconds = 0.0
    for report in run.reports:
        suite = ET.SubElement(root, "testsuite", name=report.name, file=report.profile)
        cases = [_testcase(report, r, details) for r in report.results]
        if run.require_coverage:
            cases.append(_coverage_case(report))
        suite.extend(cases)
        failed = sum(1 for case in cases if case.find("failure") is not None)
        spent = sum(r.seconds for r in report.results)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failed))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        suite.set("time", f"{spent:.3f}")
        total, failures, seconds = total + len(cases), failures + failed, seconds + spent
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("time", f"{seconds:.3f}")
    return root


def _testcase(
    report: ProfileReport, result: CheckResult, details: Callable[[CheckResult], str]
) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=report.name,
        name=result.name,
        time=f"{result.seconds:.3f}",
        file=result.profile,
    )
    if result.line is not None:
        case.set("line", str(result.line))
    if not result.passed:
        failure = ET.SubElement(
            case, "failure", message=_xml_text("; ".join(result.problems)), type="CheckFailed"
        )
        failure.text = _xml_text(details(result))
    elif result.notes:
        ET.SubElement(case, "system-out").text = _xml_text("\n".join(result.notes))
    return case


def _coverage_case(report: ProfileReport) -> ET.Element:
    case = ET.Element(
        "testcase", classname=report.name, name="rule coverage", time="0", file=report.profile
    )
    missing = report.unexercised
    if missing:
        failure = ET.SubElement(
            case,
            "failure",
            message=f"{len(missing)} rule(s) never exercised by a check",
            type="RuleCoverage",
        )
        failure.text = _xml_text("\n".join(f"{c.describe()} is never exercised" for c in missing))
    return case


def _xml_text(text: str) -> str:
    """XML 1.0 cannot carry most control characters, escaped or not."""
    return _XML_INVALID.sub("?", text)


def write_junit(
    run: CheckRun, path: str, *, details: Callable[[CheckResult], str] = describe_failure
) -> None:
    tree = ET.ElementTree(junit_xml(run, details=details))
    ET.indent(tree)
    try:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise RrdevError(f"cannot write the JUnit report {path}: {exc.strerror}") from None
