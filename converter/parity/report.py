"""Parity reports: JSON (machines) and JUnit XML (CI dashboards); the CLI draws the table for people
(cli/convert.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET


def write_json(report: dict[str, Any], path: Path) -> None:
    """The report as indented UTF-8 JSON at `path` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_junit(report: dict[str, Any], path: Path) -> None:
    """One test case per metric, so a CI dashboard shows which bound failed and by how much."""
    name = f"slmkit.parity.{report['target']}.{report['quant']}"
    checks = report["checks"]
    suite = ET.Element("testsuite", name=name, tests=str(len(checks)),
                       failures=str(sum(not c["passed"] for c in checks.values())), errors="0")
    for metric, check in checks.items():
        case = ET.SubElement(suite, "testcase", classname=name, name=metric)
        if check.get("gated") is False:
            ET.SubElement(case, "skipped", message=str(check["note"]))
        elif not check["passed"]:
            relation = ">=" if check["direction"] == "min" else "<="
            failure = ET.SubElement(case, "failure", message=f"{metric}={check['value']:.6g}, needs {relation} {check['bound']}")
            failure.text = json.dumps({k: report["metrics"][k] for k in report["metrics"]}, indent=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
