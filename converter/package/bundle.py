"""Assemble a bundle: parity-checked artifact(s), router, routing.json, chat format, golden vectors,
the rendered app template, a README and the manifest — written all-or-nothing."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.checkpoint import Checkpoint
from slmkit.converter.package.artifacts import ensure_artifact, parity_verdict
from slmkit.converter.package.chat_format import check_chat_format, write_chat_format
from slmkit.converter.package.footprint import ASSUMED_EFFICIENCY, device_table, kv_bytes_per_token, model_bytes
from slmkit.converter.package.platforms import PLATFORMS, Platform
from slmkit.converter.package.render import render_template
from slmkit.converter.staging import staged_output
from slmkit.converter.targets.registry import get_target
from slmkit.data import routing_file
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.manifest import ARTIFACT, BUNDLE, library_versions, read_manifest, write_manifest
from slmkit.runtime.models.recipe import Recipe
from slmkit.runtime.progress import ProgressCallback
from slmkit.runtime.simulate.devices import DeviceProfile, builtin_devices
from slmkit.runtime.simulate.speed import ModelFootprint
from slmkit.runtime.spec import parse_spec

DEFAULT_CONTEXT = 4096
MOBILE_HEAD = ("router-head.json", "router-head.f16")
# swift-transformers floor of the iOS package: 1.1.4 is the first release that knows the
# `TokenizersBackend` class transformers 5 writes into tokenizer_config.json (Tokenizer.swift, PR #296).
SWIFT_TRANSFORMERS = "1.1.4"
# onnxruntime-genai's Android AAR is not on Maven Central; each GitHub release carries it under this name
# (the artifact name its Android packaging pipeline uploads). The Gradle task and the script both fetch it.
GENAI_AAR_URL = ("https://github.com/microsoft/onnxruntime-genai/releases/download/v{version}/"
                 "onnxruntime-genai-android-{version}.aar")


def get_platform(name: str) -> Platform:
    """The platform `name` (ios, android, desktop). Raises SlmkitError listing them."""
    if name not in PLATFORMS:
        raise SlmkitError(f"Unknown platform {name!r}.", hint=f"Use one of: {', '.join(PLATFORMS)}.")
    return PLATFORMS[name]


def _devices(platform: Platform) -> list[DeviceProfile]:
    devices = builtin_devices()
    return [devices[name] for name in platform.devices]


def precheck_size(recipe: Recipe | None, platform: Platform) -> None:
    """Refuse before any download or hours of conversion when a recipe's 4-bit size fits none of the
    platform's devices."""
    if recipe is None or "q4_k_m" not in recipe.ram_gb:
        return
    needed = recipe.ram_gb["q4_k_m"]
    devices = _devices(platform)
    if all(needed > d.usable_ram_gb for d in devices):
        budgets = ", ".join(f"{d.label} {d.usable_ram_gb:g} GB" for d in devices)
        raise SlmkitError(f"{recipe.name} needs about {needed:g} GB at 4 bits; too big for every {platform.name} "
                          f"profile ({budgets}).", hint="Pick a smaller recipe (see `slmkit models list`).")


def _router_files(platform: Platform, router: Path | None) -> tuple[list[Path], str, Path]:
    """(files for router/, head features, the routing.json to start from). Phones get an n-gram
    head (what the Kotlin/Swift ports compute): the shipped one, or `--router DIR` trained with
    `slmkit router train --encoder none`."""
    if router is not None:
        header = router / "router-head.json"
        if not header.is_file():
            raise SlmkitError(f"{router} holds no router-head.json.", hint="Pass the --output folder of `slmkit router train`.")
        features = json.loads(header.read_text(encoding="utf-8")).get("features", "")
        if platform.router == "mobile" and features != "hashed-v1":
            raise SlmkitError(f"The router in {router} uses features {features!r}; the {platform.name} port computes hashed-v1 only.",
                              hint="Train it with `slmkit router train --encoder none`.")
        files = [header, router / "router-head.f16"] + ([router / "encoder"] if (router / "encoder").is_dir() else [])
        spec = router / "routing.json" if (router / "routing.json").is_file() else default_spec_path()
        return files, features, spec
    default = default_spec_path().parent
    if platform.router == "mobile":
        folder = resources.files("slmkit.runtime.default").joinpath("mobile")
        return [Path(str(folder.joinpath(name))) for name in MOBILE_HEAD], "hashed-v1", default_spec_path()
    return [default / name for name in MOBILE_HEAD] + [default / "encoder"], "hashed-v1+encoder", default_spec_path()


def _spec(base: Path, platform: Platform, name: str, model_ref: str, context: int,
          encoder: bool) -> tuple[dict[str, Any], list[str]]:
    """The bundle's routing.json, and notes on what had to change for the platform's app."""
    spec = json.loads(base.read_text(encoding="utf-8"))
    spec["name"] = name
    spec["router"]["weights"] = "router/router-head.json"
    spec["router"]["encoder"] = "router/encoder" if encoder else None
    local = next(t for t in spec["tiers"] if t["on_device"])
    local.update(backend=platform.backend, model=model_ref, context_tokens=context)
    notes = []
    methods = parse_spec(spec).confidence_check.methods()
    if any(m not in platform.confidence_methods for m in methods):
        check = spec["confidence_check"]
        spec["confidence_check"] = {k: check[k] for k in ("tiers", "unparsable_rating", "max_tokens", "prompt") if k in check}
        spec["confidence_check"].update(method="sampled_rating", threshold=7.0)
        notes.append(f"confidence_check: the {platform.name} app's engine cannot run {'/'.join(methods)} (no logits); "
                     "the bundle uses the seed's sampled_rating (threshold 7)")
    parse_spec(spec)  # the bundle never ships a spec its own runtime would refuse
    return spec, notes


# What an ONNX artifact holds for ONNX Runtime Mobile's reduced build only: the app's onnxruntime-genai
# opens the model its genai_config.json names (model.onnx + data) with the full onnxruntime-android.
ORT_MOBILE_FILES = ("model.ort", "model.required_operators.config")


def _parity_names_the_bundled_copy(folder: Path, relative: str) -> None:
    """parity.json names the artifact it checked by its cache path (the packaging machine's, e.g. /home/NAME/...):
    in a bundle, and so in an app's assets, it names the copy by its path inside the bundle instead."""
    from slmkit.runtime.manifest import PARITY

    path = folder / PARITY
    if path.is_file():
        report = json.loads(path.read_text(encoding="utf-8"))
        report["artifact"] = relative
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _drop_unused_ort(folder: Path) -> None:
    """Remove ORT_MOBILE_FILES from an Android bundle's copy of an ONNX artifact when its genai_config.json
    does not use them (they are the model a second time: ~115 MB for SmolLM2-135M), and list the artifact's
    files again so its own manifest still verifies (`dropped_for_bundle` records what went)."""
    from slmkit.runtime.manifest import PARITY, file_entries, update_manifest

    config = folder / "genai_config.json"
    if not config.is_file():
        return
    used = json.loads(config.read_text(encoding="utf-8")).get("model", {}).get("decoder", {}).get("filename")
    dropped = [name for name in ORT_MOBILE_FILES if name != used and (folder / name).is_file()]
    for name in dropped:
        (folder / name).unlink()
    if dropped:
        update_manifest(folder, ARTIFACT, {"files": file_entries(folder, frozenset({PARITY})), "dropped_for_bundle": dropped})


# The Android module's own assets: what the app needs at run time, laid out as the bundle root, so a copied
# module carries it (AGP packages src/main/assets by default).
ANDROID_ASSETS = "app/android/slmkit-routing/src/main/assets/slmkit"


def _android_assets(staging: Path, artifacts: list[dict[str, Any]], model_ref: str) -> str:
    """Move the models into the module's assets (stored once) beside copies of routing.json, router/ and
    chat_format.json; point the bundle root's routing.json at the moved model. Returns that new path."""
    assets = staging / ANDROID_ASSETS
    assets.mkdir(parents=True)
    shutil.copy2(staging / "routing.json", assets / "routing.json")
    shutil.copytree(staging / "router", assets / "router")
    if (staging / "chat_format.json").is_file():
        shutil.copy2(staging / "chat_format.json", assets / "chat_format.json")
    shutil.move(staging / "models", assets / "models")
    for a in artifacts:
        a["path"] = f"{ANDROID_ASSETS}/{a['path']}"
    spec = json.loads((staging / "routing.json").read_text(encoding="utf-8"))
    local = next(t for t in spec["tiers"] if t["on_device"])
    local["model"] = f"{ANDROID_ASSETS}/{model_ref}"
    parse_spec(spec)
    (staging / "routing.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return local["model"]


def _bundle_name(output: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", output.name) or "bundle"


def build_bundle(model: str, ckpt: Checkpoint, platform_name: str, output: Path, *, quant: str | None, router: Path | None,
                 with_gguf: bool, allow_parity_failure: bool, force: bool,
                 progress: ProgressCallback | None) -> dict[str, Any]:
    """`slmkit package`: convert (or reuse) the platform's artifact, prove parity, and write the
    bundle (models, router, routing.json, golden vectors, app template, README, manifest) into
    `output` through a staging folder renamed at the end. Returns the bundle manifest.

    Raises SlmkitError before any conversion for an unknown platform, a model too large for it, a
    wrong router or a chat template the app cannot reproduce; after conversion for a parity failure
    (unless `allow_parity_failure`) or a model that fits no device profile of the platform.
    """
    platform = get_platform(platform_name)
    precheck_size(ckpt.recipe, platform)
    router_files, features, base_spec = _router_files(platform, router)  # a wrong router fails before converting
    if platform.template is not None:
        check_chat_format(ckpt.path)  # so does a template the app's flattened chat format cannot reproduce
    artifacts = _artifacts(model, ckpt, platform, quant, with_gguf, allow_parity_failure, progress)
    main = artifacts[0]
    context, devices = _device_fit(ckpt, platform, main)
    name = _bundle_name(output)
    with staged_output(output, force=force) as staging:
        for a in artifacts:
            a["path"] = f"models/{a['folder'].name}"
            shutil.copytree(a["folder"], staging / a["path"])
            _parity_names_the_bundled_copy(staging / a["path"], a["path"])
            if platform.name == "android":
                _drop_unused_ort(staging / a["path"])
        model_ref = f"{main['path']}/{main['manifest']['model_file']}" if platform.target == "gguf" else main["path"]
        spec, notes = _write_router_and_spec(staging, platform, router_files, base_spec, name, model_ref, context)
        versions = library_versions()
        model_name = ckpt.recipe.name if ckpt.recipe else ckpt.path.name
        genai = _version("onnxruntime-genai")
        _write_vectors_and_app(staging, platform, main, spec, {
            "bundle_name": name, "model_name": model_name, "slmkit_version": versions["slmkit"],
            "swift_transformers_version": SWIFT_TRANSFORMERS, "genai_version": genai,
            "genai_aar_url": GENAI_AAR_URL.format(version=genai), "ort_version": _version("onnxruntime")})
        if platform.name == "android":
            model_ref = _android_assets(staging, artifacts, model_ref)
        manifest = _write_readme_and_manifest(staging, model, model_name, name, platform, artifacts, versions,
                                              {"features": features, "context": context, "devices": devices,
                                               "model_ref": model_ref, "notes": notes})
    return manifest  # after staged_output has renamed the folder into place


def _write_readme_and_manifest(staging: Path, model: str, model_name: str, name: str, platform: Platform,
                               artifacts: list[dict[str, Any]], versions: dict[str, str],
                               facts: dict[str, Any]) -> dict[str, Any]:
    """README.md (what is inside, parity, RAM per device, licences) and manifest.json (every file's
    size and sha256, written last: runtime/manifest.py). `facts`: router features, context tokens,
    device table, on-device model path and spec notes. Returns the manifest."""
    rows = [{"name": model_name, "target": a["target"], "quant": a["quant"], "path": a["path"],
             "bytes": model_bytes(a["folder"], a["manifest"]["model_file"]), "license": a["manifest"].get("license"),
             "parity": a["parity"]}
            for a in artifacts]
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _render_readme(staging / "README.md", {
        "bundle_name": name, "platform": platform.name, "versions": versions, "created": created, "model": model,
        "artifacts": rows, "licenses": [a["manifest"].get("license") or "unknown" for a in artifacts],
        "router": {"features": facts["features"],
                   "bytes": sum(f.stat().st_size for f in (staging / "router").rglob("*") if f.is_file())},
        "devices": facts["devices"], "context_tokens": facts["context"], "efficiency": ASSUMED_EFFICIENCY,
        "chat_format": platform.template is not None, "on_device_model": facts["model_ref"]})
    return write_manifest(staging, BUNDLE, {
        "name": name, "platform": platform.name, "created": created, "versions": versions,
        "source": artifacts[0]["manifest"].get("source"),
        "models": [{"path": r["path"], "target": r["target"], "quant": r["quant"], "bytes": r["bytes"],
                    "license": r["license"], "parity": r["parity"],
                    "parity_failure_allowed": not r["parity"]["passed"]} for r in rows],
        "router": {"features": facts["features"], "license": "Apache-2.0",
                   "data": "slmkit data/routing (see its README)"},
        "ram": {"context_tokens": facts["context"], "devices": facts["devices"]},
        "notes": facts["notes"],
    })


def _artifacts(model: str, ckpt: Checkpoint, platform: Platform, quant: str | None, with_gguf: bool,
               allow_parity_failure: bool, progress: ProgressCallback | None) -> list[dict[str, Any]]:
    """The platform's artifact (first), plus a Q4_K_M GGUF with `with_gguf`: each converted or reused
    from the cache, with its parity verdict (converter/package/artifacts.py)."""
    target = get_target(platform.target)
    quant = quant or (ckpt.recipe.default_quant.get(platform.target) if ckpt.recipe else None) or target.default_quant
    wanted = [(platform.target, quant)] + ([("gguf", "q4_k_m")] if with_gguf and platform.target != "gguf" else [])
    artifacts = []
    for target_name, target_quant in wanted:
        folder, reused = ensure_artifact(model, ckpt, target_name, target_quant, progress)
        parity = parity_verdict(folder, progress, allow_parity_failure)
        artifacts.append({"target": target_name, "quant": target_quant, "folder": folder, "reused": reused,
                          "parity": parity, "manifest": read_manifest(folder, ARTIFACT)})
    return artifacts


def _device_fit(ckpt: Checkpoint, platform: Platform, main: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """(context tokens, per-device RAM table) for the main artifact (converter/package/footprint.py).
    Raises SlmkitError when it fits none of the platform's device profiles."""
    conversion = main["manifest"].get("conversion") or {}
    context = int(conversion.get("cache_length") or DEFAULT_CONTEXT)
    footprint = ModelFootprint(main["folder"].name, model_bytes(main["folder"], main["manifest"]["model_file"]),
                               kv_bytes_per_token(ckpt), context)
    devices = device_table(footprint, _devices(platform))
    if not any(d["fits"] for d in devices):
        budgets = ", ".join(f"{d['label']} {d['usable_ram_gb']:g} GB" for d in devices)
        raise SlmkitError(f"{main['folder'].name} needs about {devices[0]['ram_needed_gb']:.2f} GB; too big for every "
                          f"{platform.name} profile ({budgets}).", hint="Pick a smaller model or a lower-bit quantization.")
    return context, devices


def _write_router_and_spec(staging: Path, platform: Platform, router_files: list[Path], base_spec: Path,
                           name: str, model_ref: str, context: int) -> tuple[dict[str, Any], list[str]]:
    """router/ (head, encoder) and routing.json, whose router temperature is the shipped head's own
    calibration (the mobile n-gram head is fitted apart from the default one). Returns (spec, notes)."""
    (staging / "router").mkdir()
    for file in router_files:
        (shutil.copytree if file.is_dir() else shutil.copy2)(file, staging / "router" / file.name)
    spec, notes = _spec(base_spec, platform, name, model_ref, context, encoder=(staging / "router" / "encoder").is_dir())
    head_info = json.loads((staging / "router" / "router-head.json").read_text(encoding="utf-8")).get("info", {})
    if "temperature" in head_info:
        spec["router"]["temperature"] = float(head_info["temperature"])
    (staging / "routing.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return spec, notes


def _write_vectors_and_app(staging: Path, platform: Platform, main: dict[str, Any], spec: dict[str, Any],
                           context_vars: dict[str, Any]) -> None:
    """vectors/ (the runtime's golden vectors, plus this bundle's chat format and router decisions)
    and, for a mobile platform, the app template rendered under app/<platform>."""
    vectors = Path(str(resources.files("slmkit.runtime").joinpath("vectors")))
    shutil.copytree(vectors, staging / "vectors", ignore=shutil.ignore_patterns("__pycache__"))
    tokenizer_dir = staging / main["path"] / get_target(platform.target).tokenizer_dir
    if platform.template is not None:
        write_chat_format(tokenizer_dir, staging / "chat_format.json", staging / "vectors" / "chat_format.jsonl")
    if platform.router == "mobile":
        write_router_vectors(staging, spec, staging / "vectors" / "router_decisions.jsonl")
    if platform.template:
        render_template(platform.template, staging / "app" / platform.name, context_vars,
                        test_resources={"routing.json": staging / "routing.json", "vectors": staging / "vectors",
                                        "router": staging / "router"})


def write_router_vectors(bundle: Path, spec: dict[str, Any], path: Path, count: int = 40) -> None:
    """The Python router's decisions with the bundle's own head on a seeded sample of the shipped
    requests: the ports must give the same label and probabilities."""
    import random

    from slmkit.runtime.data import read_dataset
    from slmkit.runtime.router.classifier import ClassifierRouter

    items = read_dataset(routing_file("train.jsonl.gz")).items
    requests = [i.request for i in random.Random(0).sample(items, min(count, len(items)))]
    router = ClassifierRouter(parse_spec(spec).router, bundle)
    rows = []
    for number, request in enumerate(requests):
        decision = router.decide(request)
        rows.append({"name": f"request {number}", "head": spec["router"]["weights"], "system": request.system,
                     "user": request.user, "expected": {"label": decision.label, "confidence": decision.confidence,
                                                        "probabilities": decision.probabilities}})
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _render_readme(path: Path, values: dict[str, Any]) -> None:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("slmkit.converter.package", "templates"), keep_trailing_newline=True,
                      undefined=StrictUndefined)   # a value the template names but nobody passed is an error
    path.write_text(env.get_template("README.md.j2").render(**values), encoding="utf-8")
