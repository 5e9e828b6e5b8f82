"""Bad input: one clear message, exit != 0, no traceback, nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from slmkit.cli import main as cli
from tests.conftest import run_cli


def assert_clean_failure(result, *phrases: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    text = " ".join(result.stderr.split())
    for phrase in phrases:
        assert phrase in text, text


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_unknown_model_lists_close_recipes(tmp_path: Path) -> None:
    assert_clean_failure(run_cli("convert", "gemma-3-27b", "--output", str(tmp_path / "o")),
                         "Unknown model 'gemma-3-27b'", "Did you mean", "gemma-3-12b")
    assert not (tmp_path / "o").exists()


def test_hub_model_offline_names_repo_and_local_path(tmp_path: Path) -> None:
    result = run_cli("convert", "qwen2.5-0.5b", env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert_clean_failure(result, "'Qwen/Qwen2.5-0.5B-Instruct' is not in the local Hugging Face cache",
                         "pass a local checkpoint folder")


def test_unsupported_architecture_lists_supported(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    assert_clean_failure(run_cli("convert", str(tmp_path / "m")), "Unsupported architecture 'gpt2'", "Supported: gemma3_text, llama, phi3, qwen2")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    assert_clean_failure(run_cli("convert", str(tmp_path)), "has no config.json")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_safetensors(damage: str, fixture_dir, tmp_path: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(fixture_dir("llama"), model)
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 10)
    result = run_cli("convert", str(model), "--quant", "f16", "--output", str(tmp_path / "out"))
    assert_clean_failure(result, "model.safetensors")
    assert "truncated" in result.stderr or "corrupt" in result.stderr
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)


def test_output_exists_needs_force(fixture_dir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    assert_clean_failure(run_cli("convert", str(fixture_dir("llama")), "--quant", "f16", "--output", str(out)),
                         "already exists", "--force")
    assert (out / "keep.txt").read_text() == "user data"
    result = run_cli("convert", str(fixture_dir("llama")), "--quant", "f16", "--output", str(out), "--force")
    assert result.returncode == 0, result.stderr
    assert not (out / "keep.txt").exists() and (out / "manifest.json").is_file()
    assert not leftovers(tmp_path)


def test_unknown_target_and_quant(fixture_dir) -> None:
    assert_clean_failure(run_cli("convert", str(fixture_dir("llama")), "--target", "tflite"), "Unknown target 'tflite'", "gguf")
    assert_clean_failure(run_cli("convert", str(fixture_dir("llama")), "--quant", "q3_k"), "no quantization 'q3_k'", "q4_k_m")


def test_too_little_disk_is_refused_before_writing(fixture_dir, tmp_path: Path, monkeypatch) -> None:
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("shutil.disk_usage", lambda _p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(SystemExit) as exit_info:
        monkeypatch.setattr("sys.argv", ["slmkit", "convert", str(fixture_dir("llama")), "--quant", "f16",
                                         "--output", str(tmp_path / "out")])
        cli.main()
    assert exit_info.value.code == 1
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)


def test_ctrl_c_mid_convert_leaves_nothing(fixture_dir, tmp_path: Path, monkeypatch, capsys) -> None:
    from slmkit.converter.targets.gguf import writer

    def interrupted(self, *args, **kwargs):
        (args[0]).write_bytes(b"partial")  # the file is half-written when Ctrl-C arrives
        raise KeyboardInterrupt

    monkeypatch.setattr(writer.GGUFPlan, "write", interrupted)
    monkeypatch.setattr("sys.argv", ["slmkit", "convert", str(fixture_dir("llama")), "--quant", "f16",
                                     "--output", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 130
    assert "nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)


def test_sigterm_mid_convert_leaves_nothing(fixture_dir, tmp_path: Path) -> None:
    """A CI timeout or `kill` sends SIGTERM: the staging folder must go like it does on Ctrl-C."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "slmkit.cli", "convert", str(fixture_dir("llama")),
                             "--target", "coreml", "--quant", "fp16", "--output", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(tmp_path), "the conversion never started staging"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "nothing was written" in stderr
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)


def test_parity_rejects_a_tampered_artifact(fixture_dir, tmp_path: Path) -> None:
    out = tmp_path / "art"
    assert run_cli("convert", str(fixture_dir("llama")), "--quant", "f16", "--output", str(out)).returncode == 0
    gguf_file = next(out.glob("*.gguf"))
    with gguf_file.open("r+b") as handle:
        handle.seek(-16, 2)
        handle.write(b"\xff" * 16)
    assert_clean_failure(run_cli("parity", str(out)), gguf_file.name, "does not match its sha256")


def test_parity_on_a_folder_that_is_not_an_artifact(tmp_path: Path) -> None:
    assert_clean_failure(run_cli("parity", str(tmp_path)), "not an slmkit artifact")


def test_parity_on_an_unloadable_gguf_is_one_clear_error(fixture_dir, tmp_path: Path) -> None:
    from slmkit.runtime.manifest import ARTIFACT, read_manifest, write_manifest

    out = tmp_path / "art"
    assert run_cli("convert", str(fixture_dir("llama")), "--quant", "f16", "--output", str(out)).returncode == 0
    manifest = read_manifest(out, ARTIFACT)
    gguf_file = out / manifest["model_file"]
    gguf_file.write_bytes(gguf_file.read_bytes()[:4096])  # truncated, and re-hashed so only llama.cpp can tell
    write_manifest(out, ARTIFACT, {k: manifest[k] for k in ("target", "quant", "model_file", "source", "versions")})
    assert_clean_failure(run_cli("parity", str(out)), "llama.cpp cannot load")


def test_bad_prompts_file(fixture_dir, tmp_path: Path) -> None:
    out = tmp_path / "art"
    assert run_cli("convert", str(fixture_dir("llama")), "--quant", "f16", "--output", str(out)).returncode == 0
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"text": "fine"}\n{"txt": "typo"}\n')
    assert_clean_failure(run_cli("parity", str(out), "--prompts", str(prompts)), "prompts.jsonl line 2")


@pytest.mark.parametrize("template, message", [
    ("{% frobnicate %}{{ messages }}", "is not valid Jinja (line 1: Encountered unknown tag 'frobnicate'"),
    ("{{ raise_exception('Only user turns, please') }}", "refused the conversation: Only user turns, please"),
])
def test_a_template_no_runtime_can_render_is_refused_before_converting(template: str, message: str, fixture_dir,
                                                                       tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(fixture_dir("llama"), model)
    (model / "chat_template.jinja").write_text(template, encoding="utf-8")
    result = run_cli("convert", str(model), "--target", "gguf", "--quant", "f16", "--output", str(tmp_path / "out"))
    assert_clean_failure(result, message)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("args", [
    ["parity", "ART", "--report", "FILE/p.json"], ["parity", "ART", "--junit", "FILE/p.xml"],
    ["convert", "MODEL", "--output", "FILE/out"], ["models", "synth", "gemma-3-1b", "--output", "FILE/x"],
    ["package", "--platform", "android", "--model", "MODEL", "--output", "FILE/b"],
    ["router", "train", "--data", "DATA", "--output", "FILE"], ["router", "eval", "--data", "DATA", "--report", "FILE/r.json"],
    ["router", "cv", "--data", "DATA", "--report", "FILE/r.json"], ["simulate", "--workload", "DATA", "--report", "FILE"],
])
def test_an_unwritable_output_is_refused_before_any_work(args: list[str], fixture_dir, tmp_path: Path) -> None:
    """Every path a command writes is checked when the command line is parsed, not after the work."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "hi", "label": "simple", "source": "a"}\n')
    values = {"ART": str(tmp_path), "MODEL": str(fixture_dir("llama")), "DATA": str(data), "FILE": str(blocker)}
    argv = [values.get(a, a.replace("FILE", str(blocker))) for a in args]
    result = run_cli(*argv)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot write" in " ".join(result.stderr.split()) and "is a file, not a folder" in " ".join(result.stderr.split())


@pytest.mark.parametrize("args, message", [
    (["parity", "ART", "--steps", "0"], "Invalid value for '--steps'"),
    (["parity", "ART", "--threads", "0"], "Invalid value for '--threads'"),
    (["models", "synth", "gemma-3-1b", "--output", "OUT", "--seed", "-1"], "Invalid value for '--seed'"),
])
def test_numbers_out_of_range_are_refused_with_the_option_named(args: list[str], message: str, tmp_path: Path) -> None:
    argv = [{"ART": str(tmp_path), "OUT": str(tmp_path / "o")}.get(a, a) for a in args]
    assert_clean_failure(run_cli(*argv), message)
