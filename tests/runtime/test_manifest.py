"""One manifest format for artifacts and bundles: written, read back validated, files checked; entries
pointing outside the folder, malformed fields and symlinks are one clear line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slmkit.runtime.checksums import sha256_file
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.manifest import ARTIFACT, BUNDLE, MANIFEST, check_files, read_manifest, update_manifest, write_manifest


def _bundle(folder: Path) -> Path:
    (folder / "router").mkdir(parents=True)
    (folder / "router" / "head.f16").write_bytes(b"\x00" * 16)
    (folder / "routing.json").write_text("{}")
    write_manifest(folder, BUNDLE, {"platform": "android", "versions": {"slmkit": "0.1.0"}})
    return folder


def _rewrite(folder: Path, change) -> None:
    data = json.loads((folder / MANIFEST).read_text())
    change(data)
    (folder / MANIFEST).write_text(json.dumps(data))


def test_written_then_read_and_checked(tmp_path: Path) -> None:
    folder = _bundle(tmp_path / "b")
    manifest = read_manifest(folder, BUNDLE)
    assert [e["path"] for e in manifest["files"]] == ["router/head.f16", "routing.json"]
    assert check_files(folder, manifest) == []
    (folder / "routing.json").write_text("{} ")
    (folder / "extra.txt").write_text("x")
    problems = check_files(folder, manifest)
    assert "routing.json: size 3 bytes, manifest says 2" in problems
    assert "extra.txt: not in the manifest (added after packaging)" in problems
    assert update_manifest(folder, BUNDLE, {"note": 1})["note"] == 1


def test_an_entry_outside_the_folder_is_refused_before_reading_it(tmp_path: Path) -> None:
    """The ../ case: a real file with its real hash, listed by a relative path leaving the bundle."""
    folder = _bundle(tmp_path / "b")
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    for path in ("../outside.txt", str(outside), "router/../../outside.txt", "router\\..\\x", ""):
        _rewrite(folder, lambda d, path=path: d["files"].append({"path": path, "sha256": sha256_file(outside), "size": 6}))
        with pytest.raises(SlmkitError, match=r"invalid: field files\.2\.path: .*not a relative path inside the folder"):
            read_manifest(folder, BUNDLE)
        _rewrite(folder, lambda d: d["files"].pop())


@pytest.mark.parametrize("change, field", [
    (lambda d: d["files"][0].pop("path"), "files.0.path"),
    (lambda d: d.pop("platform"), "platform"),
    (lambda d: d["files"][0].update(size="big"), "files.0.size"),
    (lambda d: d["files"][0].update(size=str(d["files"][0]["size"])), "files.0.size"),  # the right size, as text
    (lambda d: d["files"][0].update(sha256="abc"), "files.0.sha256"),
    (lambda d: d["files"].append(dict(d["files"][0])), "files"),
    (lambda d: d.update(files={"routing.json": "0" * 64}), "files"),
])
def test_missing_or_wrong_fields_name_the_file_and_field(tmp_path: Path, change, field: str) -> None:
    folder = _bundle(tmp_path / "b")
    _rewrite(folder, change)
    with pytest.raises(SlmkitError, match=rf"{MANIFEST} is invalid: field {field}\b"):
        read_manifest(folder, BUNDLE)


@pytest.mark.parametrize("model_file, message", [
    ("../model.gguf", "not a relative path inside the folder"),
    ("/etc/passwd", "not a relative path inside the folder"),
    ("other.gguf", "model_file 'other.gguf' is not among the listed files"),
    ("model.mlpackage/Data", "model_file 'model.mlpackage/Data' is not among the listed files"),  # a folder: Core ML packages only
])
def test_an_artifacts_model_file_is_a_listed_file(tmp_path: Path, model_file: str, message: str) -> None:
    """`slmkit parity` opens manifest["model_file"]: it must be one of the hash-checked files (or a
    listed folder such as model.mlpackage), never a path of the manifest's choosing."""
    folder = tmp_path / "a"
    (folder / "model.mlpackage" / "Data").mkdir(parents=True)
    (folder / "model.mlpackage" / "Data" / "weights.bin").write_bytes(b"w")
    write_manifest(folder, ARTIFACT, {"target": "coreml", "quant": "int4", "model_file": "model.mlpackage"})
    assert read_manifest(folder, ARTIFACT)["model_file"] == "model.mlpackage"
    _rewrite(folder, lambda d: d.update(model_file=model_file))
    with pytest.raises(SlmkitError, match=message):
        read_manifest(folder, ARTIFACT)


def test_symlinks_are_reported_not_followed(tmp_path: Path) -> None:
    folder = _bundle(tmp_path / "b")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "head.f16").write_bytes(b"\x00" * 16)
    manifest = read_manifest(folder, BUNDLE)
    (folder / "router" / "head.f16").unlink()
    (folder / "router").rmdir()
    (folder / "router").symlink_to(outside, target_is_directory=True)  # same bytes, reached through a link
    problems = check_files(folder, manifest)
    assert "router/head.f16: is a symlink (not followed)" in problems
    assert "router: is a symlink, not in the manifest" in problems


def test_other_formats_and_garbage_are_one_error(tmp_path: Path) -> None:
    folder = _bundle(tmp_path / "b")
    with pytest.raises(SlmkitError, match="is not an slmkit artifact"):
        read_manifest(folder, "slmkit-artifact/2")
    (folder / MANIFEST).write_text("[1, 2]")
    with pytest.raises(SlmkitError, match="is not a bundle"):
        read_manifest(folder, BUNDLE)
    with pytest.raises(SlmkitError, match="has no manifest.json"):
        read_manifest(tmp_path, BUNDLE)


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
def test_any_json_is_read_or_refused_cleanly(tmp_path_factory, data) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    for payload in (data, {"format": BUNDLE, "platform": "ios", "files": data}, {"format": BUNDLE, "platform": "ios", "files": [data]}):
        (folder / MANIFEST).write_text(json.dumps(payload))
        try:
            manifest = read_manifest(folder, BUNDLE)
        except SlmkitError:
            continue
        check_files(folder, manifest)
