"""Parity reports: JSON (machines), JUnit XML (CI dashboards), a rich table (people)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.table import Table


def write_json(report: dict[str, Any], path: Path) -> None:
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


def print_summary(report: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Parity: {report['artifact']} ({report['runner']}) vs {report['reference_runner']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("bound", justify="right")
    table.add_column("")
    for metric, check in report["checks"].items():
        relation = "≥" if check["direction"] == "min" else "≤"
        verdict = ("[yellow]not gated[/]" if check.get("gated") is False
                   else "[green]pass[/]" if check["passed"] else "[red]FAIL[/]")
        table.add_row(metric, f"{check['value']:.6g}", f"{relation} {check['bound']}", verdict)
    console.print(table)
    for metric, check in report["checks"].items():
        if check.get("note"):
            console.print(f"[yellow]{metric}: {check['note']}[/]")
    m = report["metrics"]
    console.print(f"{m['prompts']} prompts, {m['positions']} positions; max |Δlogit| {m['max_abs_logit_diff']:.4g}; "
                  f"perplexity {m['ppl_reference']:.4g} → {m['ppl_artifact']:.4g}")
    for note in report.get("skipped_prompts", []):
        console.print(f"[yellow]skipped:[/] {note}")
    if not report["tokenizer"]["problems"]:
        console.print(f"tokenizer: {report['tokenizer'].get('added_tokens_checked', 0)} added/special tokens tokenized alike")
    for problem in report["tokenizer"]["problems"]:
        console.print(f"[red]tokenizer:[/] {problem}")
    verdict = "[bold green]PASSED[/]" if report["passed"] else "[bold red]FAILED[/]"
    console.print(f"{verdict} at {report['quant']} thresholds")
