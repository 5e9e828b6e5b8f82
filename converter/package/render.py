"""Render an app template from mobile_templates/: `*.j2` files through Jinja2 (names and versions
of this bundle), everything else copied as is; the bundle's spec and golden vectors go into the
template's test resources so its tests run the same contract."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

TEST_RESOURCES = {"ios": "Tests/SlmkitRoutingCoreTests/Resources", "android": "slmkit-routing/src/test/resources"}


def template_root(name: str) -> Path:
    """The app template `name` (ios, android) as shipped in slmkit.mobile_templates."""
    return Path(str(resources.files("slmkit.mobile_templates").joinpath(name)))


def render_template(name: str, out: Path, values: dict[str, Any], test_resources: dict[str, Path]) -> list[Path]:
    """The app template `name` written to `out`: *.j2 files rendered with `values` (an undefined name
    is an error), other files copied; `test_resources` copied into the template's test-resources
    folder so the app's tests run the bundle's own spec and vectors. Returns the files written.
    """
    root = template_root(name)
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True)
    written = []
    for source in sorted(root.rglob("*")):
        if not source.is_file() or "__pycache__" in source.parts:
            continue
        relative = source.relative_to(root)
        if source.suffix == ".j2":
            target = out / relative.with_suffix("")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(env.from_string(source.read_text(encoding="utf-8")).render(**values), encoding="utf-8")
        else:
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        if target.suffix == ".sh" or target.name == "gradlew":
            target.chmod(0o755)   # scripts stay runnable whatever the wheel kept of their mode
        written.append(target)
    resource_dir = out / TEST_RESOURCES[name]
    resource_dir.mkdir(parents=True, exist_ok=True)
    for label, path in test_resources.items():
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, resource_dir / label)
    return written
