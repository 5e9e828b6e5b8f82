"""pytest entry point for parity in CI: one test per artifact folder matched by $ARTIFACTS
(a glob, default `bundle/models/*`). Each runs the same check as `slmkit parity` (writes the
artifact's parity.json) and fails with every metric that is out of bounds.
Run: pytest --junitxml=parity-junit.xml ci/test_parity.py
"""

import glob
import os
from pathlib import Path

import pytest

ARTIFACTS = sorted(Path(p) for p in glob.glob(os.environ.get("ARTIFACTS", "bundle/models/*")) if Path(p).is_dir())


def test_some_artifacts_were_found() -> None:
    assert ARTIFACTS, f"no artifact folder matches ARTIFACTS={os.environ.get('ARTIFACTS', 'bundle/models/*')!r}"


@pytest.mark.parametrize("artifact", ARTIFACTS, ids=[a.name for a in ARTIFACTS])
def test_artifact_matches_its_pytorch_source(artifact: Path) -> None:
    from slmkit.converter.parity.check import check_artifact

    report = check_artifact(artifact)
    failing = {name: check for name, check in report["checks"].items() if not check["passed"]}
    assert not failing, f"{artifact.name} out of bounds: {failing}"
