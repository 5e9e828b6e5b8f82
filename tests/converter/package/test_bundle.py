"""`slmkit package` / `slmkit verify` end to end on a tiny checkpoint, for all three platforms.

The rendered Swift and Kotlin must parse (tree-sitter); the Kotlin routing core must compile and
pass every golden vector on the JVM, including the bundle's own chat-format and router vectors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.cli.test_errors import assert_clean_failure
from slmkit.converter.package.bundle import ANDROID_ASSETS
from tests.converter.package.toolchains import kotlinc, pinned_kotlin, swift



@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {"SLMKIT_CACHE": str(tmp_path_factory.mktemp("cache"))}


# A chat template in shapes seen in the field, all at once: no system role (Gemma 2-era
# `raise_exception`), transformers' `{% generation %}` tag, Llama 3.2's guarded `strftime_now` date.
FIELD_TEMPLATE = (
    "{%- if strftime_now is defined %}{%- set date_string = strftime_now('%d %b %Y') %}{%- else %}"
    "{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ '<|im_start|>system\nToday Date: ' + date_string + '<|im_end|>\n' }}"
    "{% for m in messages %}{% if m['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}{% generation %}"
    "{{ m['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}{% else %}"
    "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.fixture(scope="module")
def bundles(fixture_dir, tmp_path_factory: pytest.TempPathFactory, cache: dict[str, str]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    field = root / "llama-field-template"
    shutil.copytree(fixture_dir("llama"), field)
    (field / "chat_template.jinja").write_text(FIELD_TEMPLATE, encoding="utf-8")
    built = {}
    for platform, quant in (("android", "fp32"), ("ios", "fp16"), ("desktop", "f16")):
        out = root / platform
        model = field if platform == "android" else fixture_dir("llama")
        result = run_cli("package", "--platform", platform, "--model", str(model), "--quant", quant,
                         "--output", str(out), *(["--zip"] if platform == "android" else []), env=cache)
        assert result.returncode == 0, result.stderr
        built[platform] = out
    return built


def test_manifest_lists_every_file_with_versions_licence_parity_and_ram(bundles: dict[str, Path]) -> None:
    for platform, bundle in bundles.items():
        manifest = json.loads((bundle / "manifest.json").read_text())
        files = {f["path"] for f in manifest["files"]}
        on_disk = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()} - {"manifest.json"}
        assert files == on_disk
        assert manifest["platform"] == platform and manifest["versions"]["slmkit"]
        model = manifest["models"][0]
        assert model["parity"]["passed"] and not model["parity_failure_allowed"] and "license" in model
        assert manifest["ram"]["devices"] and all("fits" in d for d in manifest["ram"]["devices"])
        spec = json.loads((bundle / "routing.json").read_text())
        local = next(t for t in spec["tiers"] if t["on_device"])
        assert (bundle / local["model"]).exists() and (bundle / spec["router"]["weights"]).is_file()
        assert "Models and licences" in (bundle / "README.md").read_text()
        method = spec["confidence_check"]["method"]
        if platform == "android":  # onnxruntime-genai's Java API has no logits: the seed's rating, said so
            assert method == "sampled_rating" and "no logits" in manifest["notes"][0]
        else:
            assert method == "options" and manifest["notes"] == []
    assert (bundles["android"].parent / "android.zip").is_file()


def test_an_android_bundle_ships_the_model_once_and_its_artifact_still_verifies(bundles: dict[str, Path]) -> None:
    """genai_config.json names model.onnx: the ORT Mobile copy (model.ort) is not shipped, and the artifact's
    own manifest is rewritten to match (parity's check of the folder passes)."""
    from slmkit.converter.parity.run import open_artifact

    folder = next((bundles["android"] / ANDROID_ASSETS / "models").iterdir())
    assert (folder / "model.onnx").is_file() and not (folder / "model.ort").exists()
    manifest = open_artifact(folder)   # raises if a listed file is missing or changed
    assert manifest["dropped_for_bundle"] == ["model.ort", "model.required_operators.config"]


def test_the_android_module_carries_its_assets(bundles: dict[str, Path], tmp_path: Path) -> None:
    """The module is self-contained: copied out of the bundle, its assets hold a spec whose paths resolve
    inside them (model, router head, chat format); the model is stored once, in the module."""
    from slmkit.runtime.spec import load_spec
    from slmkit.runtime.validation import spec_paths_inside

    module = tmp_path / "app" / "slmkit-routing"
    shutil.copytree(bundles["android"] / "app" / "android" / "slmkit-routing", module)
    assets = module / "src" / "main" / "assets" / "slmkit"
    assert spec_paths_inside(assets / "routing.json") == []
    spec = load_spec(assets / "routing.json")
    local = next(t for t in spec.tiers if t.on_device)
    assert (assets / local.model / "genai_config.json").is_file() and (assets / spec.router.weights).is_file()
    assert (assets / "chat_format.json").is_file() and not (bundles["android"] / "models").exists()
    root = load_spec(bundles["android"] / "routing.json")   # the bundle root's spec points into the module
    assert next(t for t in root.tiers if t.on_device).model == f"{ANDROID_ASSETS}/{local.model}"


FAKE_CURL = """#!/bin/sh
# Stands in for curl: copies the file $FAKE_AAR to the file after -o (or fails like curl -f on a 404), records the
# URL; with FAKE_HANG it writes part of it and hangs, like a slow download.
out=""; while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2;; http*) echo "$1" > "$FAKE_LOG"; shift;; *) shift;; esac; done
[ -n "$FAKE_AAR" ] || { echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; }
cp "$FAKE_AAR" "$out"
[ -z "${FAKE_HANG:-}" ] || exec sleep 60
"""


def test_the_aar_fetch_pins_its_sha256_and_refuses_other_bytes(bundles: dict[str, Path], tmp_path: Path) -> None:
    """fetch-onnxruntime-genai.sh (curl stood in for): the first fetch installs the AAR and pins its SHA-256; a
    later fetch of other bytes, a proxy's page, a transfer cut short, a failed or killed download each install
    nothing and leave no .part; an AAR matching its pin is not fetched again; `verify` names an AAR swapped after."""
    import hashlib
    import signal
    import time
    from slmkit.converter.package.bundle import GENAI_AAR_URL

    bundle = tmp_path / "bundle"
    shutil.copytree(bundles["android"], bundle)
    module = bundle / "app" / "android" / "slmkit-routing"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    gradle = (module / "build.gradle.kts").read_text()
    version = gradle.split('val genaiVersion = "', 1)[1].split('"', 1)[0]
    maven = module / "maven"
    aar = maven / f"com/microsoft/onnxruntime/onnxruntime-genai-android/{version}/onnxruntime-genai-android-{version}.aar"
    pin = maven / f"onnxruntime-genai-android-{version}.aar.sha256"
    log = tmp_path / "url"
    release, other, cut, html = (tmp_path / name for name in ("release.aar", "other.aar", "cut.aar", "page.html"))
    for aar_file, classes in ((release, b"release classes"), (other, b"other classes")):
        with zipfile.ZipFile(aar_file, "w") as archive:
            archive.writestr("AndroidManifest.xml", "<manifest package='ai.onnxruntime.genai'/>")
            archive.writestr("classes.jar", classes * 1000)
    cut.write_bytes(release.read_bytes()[: release.stat().st_size // 2])   # a transfer cut short, curl exit 0
    html.write_text("<html>proxy login</html>")

    def env(content: Path | str, **more: str) -> dict[str, str]:
        return {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_AAR": str(content), "FAKE_LOG": str(log), **more}

    def fetch(content: Path | str) -> subprocess.CompletedProcess[str]:
        log.unlink(missing_ok=True)
        return subprocess.run(["sh", str(module / "fetch-onnxruntime-genai.sh")], env=env(content), capture_output=True,
                              text=True, timeout=60)

    for bad in (html, cut):
        refused = fetch(bad)
        assert refused.returncode != 0 and "did not return a whole AAR" in refused.stderr, refused.stderr
        assert not aar.exists() and not pin.exists() and not list(maven.rglob("*.part"))
    first = fetch(release)
    assert first.returncode == 0, first.stderr
    assert log.read_text().strip() == GENAI_AAR_URL.format(version=version)
    assert aar.read_bytes() == release.read_bytes() and aar.with_suffix(".pom").is_file()
    assert pin.read_text().split() == [hashlib.sha256(release.read_bytes()).hexdigest(), aar.name]
    assert "pinned SHA-256" in first.stdout
    again = fetch(release)
    assert again.returncode == 0 and "already" in again.stdout and not log.exists()   # matches its pin: no download
    aar.unlink()
    swapped = fetch(other)
    assert swapped.returncode != 0 and "pins" in swapped.stderr and "not installed" in swapped.stderr and not aar.exists()
    failed = fetch("")
    assert failed.returncode != 0 and not aar.exists() and not list(maven.rglob("*.part"))
    hanging = subprocess.Popen(["sh", str(module / "fetch-onnxruntime-genai.sh")], env=env(release, FAKE_HANG="1"),
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not list(maven.rglob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(maven.rglob("*.part")), "the stand-in curl never started writing"
    os.killpg(hanging.pid, signal.SIGTERM)   # what Ctrl-C or a CI timeout does to the whole job
    hanging.wait(timeout=30)
    assert not list(maven.rglob("*.part")) and not aar.exists()
    alone = subprocess.Popen(["sh", str(module / "fetch-onnxruntime-genai.sh")], env=env(release, FAKE_HANG="1"),
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list(maven.rglob("*.part")) and time.monotonic() < deadline + 30:
        time.sleep(0.05)
    started = time.monotonic()
    alone.send_signal(signal.SIGTERM)        # the script alone (kill PID): it stops its curl, not after the download
    assert alone.wait(timeout=30) == 143 and time.monotonic() - started < 10
    assert not list(maven.rglob("*.part")) and not aar.exists()
    assert fetch(release).returncode == 0
    assert f'"{GENAI_AAR_URL.format(version=version)}"' in gradle
    assert 'file("maven/onnxruntime-genai-android-$genaiVersion.aar.sha256")' in gradle
    (module.parent / "local.properties").write_text("sdk.dir=/opt/android-sdk\n")   # what Android Studio writes
    (module.parent / ".idea").mkdir()
    (module.parent / ".idea" / "misc.xml").write_text("<project/>")
    verified = run_cli("verify", str(bundle))   # what fetching and opening the project write is not tampering
    assert verified.returncode == 0, verified.stdout + verified.stderr
    aar.write_bytes(other.read_bytes())
    assert_clean_failure(run_cli("verify", str(bundle)), f"{aar.name}: does not match the SHA-256")


def test_verify_passes_then_names_a_tampered_file(bundles: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundles["desktop"], copy)
    (copy / "manifest.json.sig").write_text("-----BEGIN SSH SIGNATURE-----\n")   # a detached signature is not "added"
    assert run_cli("verify", str(copy)).returncode == 0
    head = copy / "router" / "router-head.f16"
    data = bytearray(head.read_bytes())
    data[100] ^= 0xFF
    head.write_bytes(bytes(data))
    (copy / "extra.txt").write_text("added later")
    (copy / "app" / "ios" / ".build" / "debug").mkdir(parents=True)   # what `swift test` in app/ios writes
    (copy / "app" / "ios" / ".build" / "debug" / "x.o").write_bytes(b"\0")
    (copy / "a[").mkdir()
    (copy / "a[" / "b]").write_text("a name Rich would read as markup")
    assert_clean_failure(run_cli("verify", str(copy)), "router/router-head.f16: does not match its sha256",
                         "extra.txt: not in the manifest", "a[/b]: not in the manifest")
    assert_clean_failure(run_cli("verify", str(tmp_path)), "is not a bundle")


def test_a_bundle_whose_spec_names_files_outside_it_is_refused(bundles: dict[str, Path], tmp_path: Path) -> None:
    """The manifest is rewritten to match (integrity holds), yet the spec reaches out of the bundle."""
    import hashlib

    copy = tmp_path / "copy"
    shutil.copytree(bundles["desktop"], copy)
    shutil.copytree(copy / "router", tmp_path / "outside")
    spec_file = copy / "routing.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    spec["router"]["weights"] = "../outside/router-head.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    entry = next(e for e in manifest["files"] if e["path"] == "routing.json")
    entry.update(sha256=hashlib.sha256(spec_file.read_bytes()).hexdigest(), size=spec_file.stat().st_size)
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert_clean_failure(run_cli("verify", str(copy)),
                         "routing.json router.weights names '../outside/router-head.json' is not a relative path inside")
    assert_clean_failure(run_cli("route", "hello", "--bundle", str(copy)), "is not self-contained")
    # a home-directory path (the model loader expands `~`)
    spec["router"]["weights"] = "router/router-head.json"
    spec["tiers"][0]["model"] = "~/outside-model"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    assert_clean_failure(run_cli("route", "hello", "--bundle", str(copy)), "'~/outside-model' is not a relative path inside")
    # the same path through a symlink inside the bundle
    spec["router"]["weights"] = "linked/router-head.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    (copy / "linked").symlink_to(tmp_path / "outside")
    assert_clean_failure(run_cli("route", "hello", "--bundle", str(copy)), "through a symlink")


def _parse_errors(language, files: list[Path]) -> dict[str, list]:
    from tree_sitter import Language, Parser

    parser = Parser(Language(language))
    return {f.name: f for f in files if parser.parse(f.read_bytes()).root_node.has_error}


def test_rendered_swift_and_kotlin_parse(bundles: dict[str, Path], tmp_path: Path) -> None:
    import tree_sitter_kotlin
    import tree_sitter_swift

    swift = sorted((bundles["ios"] / "app").rglob("*.swift"))
    kotlin = sorted((bundles["android"] / "app").rglob("*.kt")) + sorted((bundles["android"] / "app").rglob("*.kts"))
    assert len(swift) >= 13 and any(f.name == "Package.swift" for f in swift) and len(kotlin) >= 17
    assert _parse_errors(tree_sitter_swift.language(), swift) == {}
    assert _parse_errors(tree_sitter_kotlin.language(), kotlin) == {}
    broken = tmp_path / "Broken.swift"
    broken.write_text("public func f( { return }")
    assert _parse_errors(tree_sitter_swift.language(), [broken])  # the check can fail
    package = (bundles["ios"] / "app" / "ios" / "Package.swift").read_text()
    assert ".iOS(.v18)" in package and "{{" not in package
    assert "swift-tools-version:6.0" in package and 'from: "1.1.4"' in package  # .iOS(.v18) needs 6.0; TokenizersBackend 1.1.4


JUNIT, HAMCREST = Path("/usr/share/java/junit4.jar"), Path("/usr/share/java/hamcrest-core.jar")  # Debian junit4
VECTOR_FILES = ("router_output", "rating", "policy", "label_probabilities", "prompts", "features", "options", "option_choice",
                "rating_distribution", "token_confidence", "trained_head", "conversation", "grouped_probabilities", "date_slots",
                "router_head", "pipeline", "chat_format", "router_decisions")


def test_kotlin_module_compiles_and_passes_every_golden_vector_on_the_jvm(bundles: dict[str, Path], tmp_path: Path) -> None:
    """Every Kotlin file of the module (GenAiEngine against onnxruntime-genai's Java API, faked in
    genai_fakes/), compiled with the Kotlin the module's Gradle build pins, warnings as errors; GenAiEngine's
    behaviour on the fakes (genai_engine_check/); every vector file and the module's JUnit tests on the JVM."""
    app = bundles["android"] / "app" / "android"
    found = kotlinc(pinned_kotlin(app / "build.gradle.kts"))
    if isinstance(found, str):
        pytest.skip(found)
    compiler, stdlib = found
    fakes = tmp_path / "genai-fakes"
    javac = subprocess.run(["javac", "-d", str(fakes), *map(str, sorted((Path(__file__).parent / "genai_fakes").rglob("*.java")))],
                           capture_output=True, text=True, timeout=300)
    assert javac.returncode == 0, javac.stderr
    module = app / "slmkit-routing"
    sources = [str(p) for p in sorted((module / "src" / "main" / "kotlin").rglob("*.kt"))]
    assert any(p.endswith("GenAiEngine.kt") for p in sources)
    jar = tmp_path / "routing.jar"
    compiled = subprocess.run([str(compiler), "-Werror", "-cp", str(fakes), *sources, "-d", str(jar)],
                              capture_output=True, text=True, timeout=900)
    assert compiled.returncode == 0, compiled.stderr
    check = tmp_path / "genai-engine-check.jar"   # GenAiEngine's native lifetimes, failures, cancel and close, on the fakes
    compiled = subprocess.run([str(compiler), "-Werror", "-cp", f"{jar}:{fakes}",
                               str(Path(__file__).parent / "genai_engine_check" / "GenAiEngineCheck.kt"), "-d", str(check)],
                              capture_output=True, text=True, timeout=900)
    assert compiled.returncode == 0, compiled.stderr
    assets = module / "src" / "main" / "assets" / "slmkit"
    engine = subprocess.run(["java", "-cp", f"{check}:{jar}:{fakes}:{stdlib}", "GenAiEngineCheckKt", str(assets / "chat_format.json"),
                             str(assets / "routing.json")], capture_output=True, text=True, timeout=300)
    assert engine.returncode == 0 and engine.stdout.rstrip().endswith("17 passed, 0 failed"), engine.stdout + engine.stderr
    run = subprocess.run(["java", "-cp", f"{jar}:{stdlib}", "dev.slmkit.routing.GoldenVectors",
                          str(module / "src" / "test" / "resources" / "vectors")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout
    counts = dict(line.split(": ", 1) for line in run.stdout.splitlines() if ": " in line and "passed" in line)
    for name in VECTOR_FILES:
        done, total = counts[name].split()[0].split("/")
        assert done == total and int(total) > 0, run.stdout
    if not JUNIT.is_file():
        pytest.skip("the vectors passed; JUnit 4 is not installed (Debian: apt-get install junit4), so the module's JUnit tests did not run")
    tests = [str(p) for p in sorted((module / "src" / "test" / "kotlin").rglob("*.kt"))]
    test_jar = tmp_path / "routing-tests.jar"
    compiled = subprocess.run([str(compiler), "-Werror", "-cp", f"{jar}:{JUNIT}", *tests, "-d", str(test_jar)],
                              capture_output=True, text=True, timeout=900)
    assert compiled.returncode == 0, compiled.stderr
    resources = module / "src" / "test" / "resources"
    junit = subprocess.run(["java", f"-Dslmkit.vectors={resources / 'vectors'}", f"-Dslmkit.spec={resources / 'routing.json'}",
                            "-cp", f"{test_jar}:{jar}:{stdlib}:{JUNIT}:{HAMCREST}", "org.junit.runner.JUnitCore",
                            *(f"dev.slmkit.routing.{Path(p).stem}" for p in tests)], capture_output=True, text=True, timeout=300)
    assert junit.returncode == 0 and "OK (" in junit.stdout, junit.stdout


def test_swift_routing_core_builds_and_passes_every_golden_vector(bundles: dict[str, Path]) -> None:
    """`swift build` + `swift test` of the rendered package: on Linux the dependency-free core (the
    Core ML engine needs a Mac: the repository's macOS workflow builds and tests both targets)."""
    driver = swift()
    if driver is None:
        pytest.skip("no Swift toolchain here (swift.org, or Debian trixie's swiftlang): .github/workflows/ios.yml runs it on macOS")
    package = bundles["ios"] / "app" / "ios"
    built = subprocess.run([driver, "build", "--build-tests"], cwd=package, capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
    tested = subprocess.run([driver, "test", "--skip-build"], cwd=package, capture_output=True, text=True, timeout=600)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert "testEveryVectorPasses' passed" in tested.stdout + tested.stderr


def test_parity_failure_is_refused_unless_allowed(bundles: dict[str, Path], fixture_dir, cache: dict[str, str],
                                                  tmp_path: Path) -> None:
    artifact = Path(cache["SLMKIT_CACHE"]) / "artifacts" / "llama-gguf-f16"
    manifest_path = artifact / "manifest.json"
    original = manifest_path.read_text()
    manifest = json.loads(original)
    manifest["parity"]["passed"] = False
    manifest_path.write_text(json.dumps(manifest))
    try:
        args = ("package", "--platform", "desktop", "--model", str(fixture_dir("llama")), "--quant", "f16")
        assert_clean_failure(run_cli(*args, "--output", str(tmp_path / "refused"), env=cache),
                             "fails parity against its PyTorch source", "--allow-parity-failure")
        assert not (tmp_path / "refused").exists()
        allowed = run_cli(*args, "--output", str(tmp_path / "allowed"), "--allow-parity-failure", env=cache)
        assert allowed.returncode == 0, allowed.stderr
        recorded = json.loads((tmp_path / "allowed" / "manifest.json").read_text())["models"][0]
        assert recorded["parity_failure_allowed"] and "FAILED" in (tmp_path / "allowed" / "README.md").read_text()
    finally:
        manifest_path.write_text(original)


def test_bad_inputs(fixture_dir, tmp_path: Path) -> None:
    assert_clean_failure(run_cli("package", "--platform", "windows-phone", "--model", "smollm2-135m", "--output",
                                 str(tmp_path / "b")), "Unknown platform 'windows-phone'", "ios, android, desktop")
    assert_clean_failure(run_cli("package", "--platform", "ios", "--model", "gemma-3-12b", "--output", str(tmp_path / "b")),
                         "gemma-3-12b needs about 8.9 GB at 4 bits; too big for every ios profile")
    encoder_router = Path(__file__).resolve().parents[3] / "runtime" / "default"
    assert_clean_failure(run_cli("package", "--platform", "android", "--model", str(fixture_dir("llama")), "--router",
                                 str(encoder_router), "--output", str(tmp_path / "b")),
                         "uses features 'hashed-v1+encoder'", "computes hashed-v1 only", "--encoder none")
    assert not (tmp_path / "b").exists()


def test_ci_parity_entry_point_reports_junit(bundles: dict[str, Path], tmp_path: Path, cache: dict[str, str]) -> None:
    import os
    import sys

    import yaml

    ci = Path(__file__).resolve().parents[3] / "mobile_templates" / "ci"
    workflow = yaml.safe_load((ci / "slmkit-parity.yml").read_text())
    assert "pytest --junitxml=parity-junit.xml ci/test_parity.py" in str(workflow["jobs"]["parity"]["steps"])
    artifacts = tmp_path / "models"
    shutil.copytree(bundles["desktop"] / "models", artifacts)
    junit = tmp_path / "parity-junit.xml"
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ci / "test_parity.py"),
                             f"--junitxml={junit}", "--rootdir", str(tmp_path), "-o", "addopts="],
                            env={**os.environ, **cache, "ARTIFACTS": str(artifacts / "*")}, capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = junit.read_text()
    assert 'testcase' in report and "llama-gguf-f16" in report and 'failures="0"' in report
    empty = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ci / "test_parity.py"),
                            "--rootdir", str(tmp_path), "-o", "addopts="],
                           env={**os.environ, "ARTIFACTS": str(tmp_path / "none" / "*")}, capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert empty.returncode == 1 and "no artifact folder matches" in empty.stdout


def test_field_template_keeps_its_date_live_and_folds_the_system_prompt(bundles: dict[str, Path]) -> None:
    """The android bundle's model has FIELD_TEMPLATE: packaging ran parity (system prompt folded on
    both sides), flattened the template with the date as a slot, and its vectors hold the clock."""
    fmt = json.loads((bundles["android"] / "chat_format.json").read_text(encoding="utf-8"))
    assert fmt["system_as_user_prefix"] and "\u27e6now:%d %b %Y\u27e7" in fmt["start"]["user"]
    assert "26 Jul 2024" not in json.dumps(fmt)
    rows = [json.loads(line) for line in (bundles["android"] / "vectors" / "chat_format.jsonl").read_text().splitlines()]
    assert all("now" in row and "Today Date: 07 Mar 2026" in row["expected"] for row in rows)
    found = next((bundles["android"] / ANDROID_ASSETS / "models").glob("*/parity.json"))
    parity = json.loads(found.read_text())
    assert parity["passed"] and parity["tokenizer"]["problems"] == []
    assert parity["artifact"] == f"models/{found.parent.name}"   # not the packaging machine's cache path
    config = json.loads((found.parent / "tokenizer_config.json").read_text())
    assert not {"local_files_only", "is_local"} & set(config)



def test_swift_engine_target_compiles_against_core_ml_and_tokenizers_signatures(bundles: dict[str, Path], tmp_path: Path) -> None:
    """The Core ML engine (a separate module) compiled against API stubs: it must use only the core's
    public API and Core ML's / swift-transformers' documented signatures (tests/.../swift_engine_check)."""
    driver = swift()
    if driver is None:
        pytest.skip("no Swift toolchain here: .github/workflows/ios.yml builds the engine on macOS")
    check = tmp_path / "engine-check"
    shutil.copytree(Path(__file__).parent / "swift_engine_check", check)
    package = bundles["ios"] / "app" / "ios"
    for name in ("SlmkitRoutingCore", "SlmkitRouting"):
        shutil.copytree(package / "Sources" / name, check / "Sources" / name)
    shutil.copytree(package / "Tests" / "SlmkitRoutingTests", check / "Tests" / "SlmkitRoutingTests")
    built = subprocess.run([driver, "build", "--build-tests"], cwd=check, capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
