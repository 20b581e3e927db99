"""JUnit XML for CI dashboards: one testcase per threshold outcome or per compared metric.

Output is deterministic: the thresholds suite's `time` (seconds measured), `timestamp`
(when the run started, UTC) and `hostname` come from the saved result, never from the
clock or the machine rendering it, so the same result gives the same bytes. The
result's environment rides along as `<properties>`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from loadbench.result import Comparison, Result

__all__ = ["comparison_junit", "thresholds_junit"]


def thresholds_junit(result: Result) -> str:
    """One testcase per threshold outcome (a `*` threshold gives one per run)."""
    classname = f"loadbench.thresholds.{result.scenario.name}"
    suite = _suite(f"thresholds: {result.scenario.name}")
    environment = result.environment
    seconds = f"{sum(run.duration_s for run in result.runs):.3f}"
    # the JUnit XSD's timestamp has no zone: started_at is UTC (its `Z` stays in properties)
    suite.set("time", seconds)
    if environment.started_at:  # unknown (a wrapped bench --json run): left out, not invented
        suite.set("timestamp", environment.started_at.removesuffix("Z"))
    if environment.hostname:  # files from before it was recorded: left out too
        suite.set("hostname", environment.hostname)
    properties = ET.SubElement(suite, "properties")
    for name, value in _environment_properties(result).items():
        ET.SubElement(properties, "property", {"name": name, "value": value})
    failures = 0
    for outcome in result.thresholds:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": outcome.expr})
        if not outcome.passed:
            failures += 1
            message = outcome.detail or "threshold failed"
            failure = ET.SubElement(case, "failure", {"message": message, "type": "threshold"})
            failure.text = f"{outcome.expr}: {message}"
        elif outcome.detail:
            ET.SubElement(case, "system-out").text = outcome.detail
    return _document(suite, tests=len(result.thresholds), failures=failures, skipped=0,
                     time=seconds)


def comparison_junit(comparison: Comparison) -> str:
    """One testcase per run and metric; regressions and runs missing in current fail."""
    classname = f"loadbench.compare.{comparison.scenario}"
    suite = _suite(f"compare: {comparison.scenario}")
    failures = skipped = 0
    for row in comparison.rows:
        case = ET.SubElement(suite, "testcase",
                             {"classname": classname, "name": f"{row.run}.{row.metric}"})
        if row.is_regression:
            failures += 1
            failure = ET.SubElement(case, "failure", {"message": f"{row.verdict}: {row.reason}",
                                                      "type": row.verdict})
            failure.text = (f"{row.run}.{row.metric}: baseline {_number(row.baseline)}, "
                            f"current {_number(row.current)}; {row.reason}")
        elif row.verdict == "new in current":
            skipped += 1
            ET.SubElement(case, "skipped", {"message": row.reason})
        else:
            ET.SubElement(case, "system-out").text = f"{row.verdict}: {row.reason}"
    return _document(suite, tests=len(comparison.rows), failures=failures, skipped=skipped)


def _environment_properties(result: Result) -> dict[str, str]:
    """The environment as the result file spells it (`loop`, not `target_loop`), then the
    loadbench version and the scenario's SHA-256; fields that are unknown (empty, or a
    cpu count of 0) are left out."""
    fields = result.environment.model_dump(mode="json", by_alias=True)
    fields |= {"loadbench_version": result.loadbench_version,
               "scenario_sha256": result.scenario.source_sha256}
    return {name: str(value) for name, value in fields.items() if value not in (None, "", 0)}


def _suite(name: str) -> ET.Element:
    return ET.Element("testsuite", {"name": name})


def _document(suite: ET.Element, tests: int, failures: int, skipped: int,
              time: str | None = None) -> str:
    counts = {"tests": str(tests), "failures": str(failures), "errors": "0"}
    suite.attrib.update({**counts, "skipped": str(skipped)})
    root = ET.Element("testsuites", {"name": "loadbench", **counts,
                                     **({"time": time} if time is not None else {})})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _number(value: float | None) -> str:
    return "missing" if value is None else f"{value:g}"
