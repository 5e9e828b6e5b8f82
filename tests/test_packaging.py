"""The namespace layout and the import boundaries the product design fixes."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"cli": "slmkit.cli", "data": "slmkit.data", "converter": "slmkit.converter", "runtime": "slmkit.runtime",
             "recipes": "slmkit.recipes", "mobile_templates": "slmkit.mobile_templates"}


def test_every_package_folder_is_installed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder, package in TOP_LEVEL.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    assert found == listed


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


HEAVY = {"torch", "transformers", "coremltools", "sklearn", "onnx", "gguf"}


def test_runtime_never_imports_torch_or_transformers() -> None:
    """Every runtime module imported at once: none of the converter's heavy libraries come along."""
    modules = _modules_after("import pkgutil, importlib, slmkit.runtime\n"
                             "for m in pkgutil.walk_packages(slmkit.runtime.__path__, 'slmkit.runtime.'):\n"
                             "    importlib.import_module(m.name)")
    assert "slmkit.runtime.pipeline" in modules and "slmkit.runtime.backends.http" in modules
    assert not HEAVY & modules and not any(m.startswith("slmkit.converter") for m in modules)


def test_runtime_sources_never_name_the_converter_or_torch() -> None:
    for path in (ROOT / "runtime").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for forbidden in ("slmkit.converter", "import torch", "from torch", "import transformers", "from transformers"):
            assert forbidden not in text, f"{path.relative_to(ROOT)} mentions {forbidden}"


def test_route_command_does_not_load_heavy_libraries() -> None:
    result = subprocess.run([sys.executable, "-c", "import sys\nfrom slmkit.cli import main as cli\n"
                             "sys.argv=['slmkit','route','Write a sonnet about the sea, then explain its meter.','--json']\n"
                             "try:\n    cli.main()\nexcept SystemExit:\n    pass\nprint('LOADED', ' '.join(sys.modules))"],
                            capture_output=True, text=True, check=True)
    assert '"final_tier"' in result.stdout
    loaded = set(result.stdout.split("LOADED", 1)[1].split())
    assert not HEAVY & loaded


def test_cli_help_does_not_load_heavy_libraries() -> None:
    result = subprocess.run([sys.executable, "-c", "import sys\nfrom slmkit.cli import main as cli\nsys.argv=['slmkit','--help']\n"
                             "try:\n    cli.main()\nexcept SystemExit:\n    pass\nprint('LOADED', ' '.join(sys.modules))"],
                            capture_output=True, text=True, check=True)
    loaded = set(result.stdout.split("LOADED", 1)[1].split())
    assert "convert" in result.stdout and "parity" in result.stdout
    assert not {"torch", "transformers", "llama_cpp", "gguf"} & loaded


def test_simulate_and_serve_do_not_load_heavy_libraries(tmp_path: Path) -> None:
    workload = tmp_path / "w.jsonl"
    workload.write_text('{"prompt": "Translate hello to French."}\n')
    result = subprocess.run([sys.executable, "-c", "import sys\nfrom slmkit.cli import main as cli\n"
                             f"sys.argv=['slmkit','simulate','--workload',{str(workload)!r},'--router-only',"
                             f"'--report',{str(tmp_path / 'r')!r}]\n"
                             "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
                             "import slmkit.runtime.server\nprint('LOADED', ' '.join(sys.modules))"],
                            capture_output=True, text=True, check=True)
    assert (tmp_path / "r" / "report.html").is_file(), result.stderr
    loaded = set(result.stdout.split("LOADED", 1)[1].split())
    assert "fastapi" in loaded and not HEAVY & loaded


def test_commands_without_the_convert_extra_name_it_in_one_line(tmp_path: Path) -> None:
    """The runtime flavour (`pip install slmkit`): torch hidden, convert-side commands refuse with the
    install line before any work; runtime commands still run."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'torch', 'transformers', 'sklearn'}:\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    for args in (["convert", "smollm2-135m"], ["parity", str(tmp_path)], ["models", "pull", "smollm2-135m"],
                 ["router", "train", "--data", "x.jsonl", "--output", str(tmp_path / "o")],
                 ["confidence", "train", "--from-observations", "x.jsonl", "--output", str(tmp_path / "o")],
                 ["package", "--model", "smollm2-135m", "--platform", "android", "--output", str(tmp_path / "b")]):
        result = subprocess.run([sys.executable, "-m", "slmkit.cli", *args], capture_output=True, text=True, env=env)
        assert result.returncode == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
        message = " ".join(result.stderr.split())
        assert 'needs the convert extra' in message and 'pip install "slmkit[convert]"' in message, message
    assert not (tmp_path / "o").exists() and not (tmp_path / "b").exists()
    routed = subprocess.run([sys.executable, "-m", "slmkit.cli", "route", "Classify the sentiment: I love it.", "--json"],
                            capture_output=True, text=True, env=env)
    assert routed.returncode == 0, routed.stderr


def _imports(path: Path) -> set[str]:
    """Every slmkit module `path` imports, at any depth (lazy and TYPE_CHECKING imports included):
    `from slmkit.x import y` counts as slmkit.x.y when y is a module, else as slmkit.x."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("slmkit.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("slmkit."):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if _source(name) is not None else node.module)
    return found


def _source(module: str) -> Path | None:
    """The file of an slmkit module in this checkout, else None."""
    top, _, rest = module.removeprefix("slmkit.").partition(".")
    folder = {package.removeprefix("slmkit."): folder for folder, package in TOP_LEVEL.items()}.get(top)
    if folder is None:
        return None
    base = ROOT / folder / Path(*rest.split(".")) if rest else ROOT / folder
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _unit(module: str) -> str:
    """The component a module belongs to: slmkit.runtime, slmkit.cli, ... and each first-level
    package or module of the converter (slmkit.converter.targets, slmkit.converter.parity, ...)."""
    parts = module.split(".")
    return ".".join(parts[:3]) if parts[1] == "converter" and len(parts) > 2 else ".".join(parts[:2])


def _component_graph() -> dict[str, set[tuple[str, str]]]:
    """component -> {(imported component, importing file)} over every source file."""
    graph: dict[str, set[tuple[str, str]]] = {}
    for folder, package in TOP_LEVEL.items():
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            source = _unit(".".join([package, *parts]) if parts else package + ".__init__")
            for target in _imports(path):
                if _unit(target) != source:
                    graph.setdefault(source, set()).add((_unit(target), str(path.relative_to(ROOT))))
    return graph


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as [a, b, ..., a], or None (depth-first, three colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}}) is None


def test_import_graph_runtime_never_reaches_converter_and_converter_has_no_cycles() -> None:
    """docs/architecture.md: runtime ↛ converter ↛ cli, and the converter's packages form a DAG
    (checkpoint → target → artifact → parity → package). Lazy imports count: a cycle through a
    function-level import is still a cycle in the design."""
    graph = _component_graph()
    assert "slmkit.converter.targets" in graph and "slmkit.runtime" in {u for u, _ in graph["slmkit.cli"]}
    for source, targets in graph.items():
        for target, where in targets:
            if source == "slmkit.runtime" or source == "slmkit.data":
                assert not target.startswith(("slmkit.converter", "slmkit.cli")), f"{where} imports {target}"
            if source.startswith("slmkit.converter"):
                assert target != "slmkit.cli", f"{where} imports the CLI"
    converter = {source: {t for t, _ in targets if t.startswith("slmkit.converter.")}
                 for source, targets in graph.items() if source.startswith("slmkit.converter.")}
    cycle = find_cycle(converter)
    assert cycle is None, "import cycle among converter packages: " + " -> ".join(cycle or [])


def test_batch_commands_without_the_batch_extra(tmp_path: Path) -> None:
    """Ray and pyarrow hidden: router eval still runs (in this process), Parquet output and
    `logs label` name the batch extra in one line and write nothing."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'ray', 'pyarrow'}:\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    data = ROOT / "data" / "routing" / "train.jsonl.gz"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "slmkit.cli", *args], capture_output=True, text=True, env=env)

    evaluated = run("router", "eval", "--data", str(data), "--limit", "40", "--report", str(tmp_path / "r.json"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((tmp_path / "r.json").read_text())["n"] == 40
    for args in (["router", "eval", "--data", str(data), "--output", str(tmp_path / "o")],
                 ["router", "eval", "--data", str(data), "--engine", "ray"],
                 ["logs", "label", "--data", str(data), "--output", str(tmp_path / "o"), "--yes"]):
        result = run(*args)
        message = " ".join(result.stderr.split())
        assert result.returncode == 1 and "Traceback" not in result.stderr, (args, result.stderr)
        assert 'pip install "slmkit[batch]"' in message, message
    assert not (tmp_path / "o").exists()
