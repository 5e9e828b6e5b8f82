"""converter/tokenizer_files.py: what an artifact's tokenizer_config.json states."""

from __future__ import annotations

import json
from pathlib import Path

from slmkit.converter.tokenizer_files import drop_loading_kwargs, state_tokenizer_config


def test_how_a_tokenizer_was_loaded_is_not_part_of_the_artifact(tmp_path: Path) -> None:
    """transformers writes from_pretrained's local_files_only back into the config: true offline, false
    online, so the same model's artifact differed between machines."""
    config = {"tokenizer_class": "GPT2Tokenizer", "local_files_only": True, "_commit_hash": "abc", "model_max_length": 8192}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    state_tokenizer_config(tmp_path, {"bos": False, "eos": False})
    stated = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert stated == {"tokenizer_class": "GPT2Tokenizer", "model_max_length": 8192, "add_bos_token": False,
                      "add_eos_token": False}
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    (pulled / "tokenizer_config.json").write_text(json.dumps({"local_files_only": False, "bos_token": "<s>"}))
    drop_loading_kwargs(pulled)
    assert json.loads((pulled / "tokenizer_config.json").read_text()) == {"bos_token": "<s>"}
    drop_loading_kwargs(tmp_path / "missing")   # no tokenizer_config.json: nothing to do
