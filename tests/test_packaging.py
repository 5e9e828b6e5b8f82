"""The namespace layout and the import boundaries the product design fixes."""

from __future__ import annotations

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
        "        if name.split('.')[0] in {'torch', 'transformers'}:\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    for args in (["convert", "smollm2-135m"], ["parity", str(tmp_path)], ["models", "pull", "smollm2-135m"],
                 ["router", "train", "--data", "x.jsonl", "--output", str(tmp_path / "o")],
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
