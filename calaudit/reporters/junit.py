"""JUnit XML for CI systems (Jenkins, GitLab): one test case per gate check.

The layout follows the JUnit schema those systems read: ``testsuites`` >
``testsuite`` (tests, failures, errors, skipped, time, timestamp) > ``testcase``
(classname, name, time) with a ``failure`` (message, type) for a breached check.
An audit without thresholds gives one passing case saying so.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..result import AuditResult

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(value: str) -> str:
    """XML 1.0 cannot carry most control characters, even escaped: replace them."""
    return _NOT_XML.sub("\ufffd", value)


def render(result: AuditResult) -> str:
    checks = result.gate.checks if result.gate is not None else ()
    source = _xml_text(result.source.get("path") or "in-memory predictions")
    failures = sum(1 for check in checks if not check.passed)
    suites = ET.Element("testsuites", name="calaudit", tests=str(max(len(checks), 1)), failures=str(failures),
                        errors="0", skipped="0", time="0")
    suite = ET.SubElement(
        suites, "testsuite", name=f"calaudit calibration gate: {source}", tests=str(max(len(checks), 1)),
        failures=str(failures), errors="0", skipped="0", time="0", timestamp=result.created_at.removesuffix("Z"),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("input", source), ("sha256", result.source.get("sha256") or ""),
                        ("n_samples", str(result.n_samples)), ("calaudit_version", result.tool_version)):
        ET.SubElement(properties, "property", name=name, value=value)
    if not checks:
        ET.SubElement(suite, "testcase", classname="calaudit.gate", name="no thresholds configured", time="0")
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname="calaudit.gate", name=_xml_text(check.name), time="0")
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=_xml_text(check.message), type="CalibrationThresholdBreached")
            value = "missing" if check.value is None else repr(check.value)
            failure.text = _xml_text(
                f"metric: {check.metric}\nvalue: {value}\nlimit: {check.comparison} {check.limit!r}\nrule: {check.source}\n"
            )
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
