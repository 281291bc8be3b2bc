"""A model directory on disk resolves as the same repository does on the Hub: the same tensors
counted (DeepSeek-V3's multi-token-prediction layer, which vLLM skips, left out in both) and the
same largest image from a Qwen-VL preprocessor_config.json. The directory holds the files the
stand-in Hub serves, written sparse (real headers, zero data)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from checkpoints import repository
from test_hub_processor import PROCESSOR, publish
from vramtop.fit import specs

COMPARED = ("params", "weight_bytes", "layers", "vision_params", "vision", "mtp_layers", "mtp_bytes")


def _write(files: dict, folder: Path) -> Path:
    folder.mkdir()
    for name, blob in files.items():
        with open(folder / name, "wb") as f:
            f.write(blob.prefix)
            f.truncate(blob.size)  # the data: a hole, zeros when read
    return folder


@pytest.mark.parametrize("repo_id", ["deepseek-ai/DeepSeek-V3", "qwen-vl-capped"])
def test_a_directory_resolves_as_its_repository_on_the_hub(hub, child, tmp_path, repo_id):
    if repo_id == "qwen-vl-capped":  # a fine-tune whose processor caps images at 980 px
        repo_id = "acme/vl"
        publish(hub, repo_id, {**PROCESSOR, "max_pixels": 1_003_520})
    else:
        hub.repos[repo_id] = repository(repo_id)
    [remote] = child.resolve(f"{repo_id}@main")  # "@main": from the Hub, even for a catalog name
    assert "error" not in remote, remote
    local = specs.resolve(str(_write(hub.repos[repo_id].files, tmp_path / "model")))
    as_json = json.loads(json.dumps(dataclasses.asdict(local)))
    assert {k: as_json[k] for k in COMPARED} == {k: remote[k] for k in COMPARED}
    if repo_id == "acme/vl":
        assert local.vision.embeds_per_item == 1_225  # (980 / 28)², not the published 16,384
    else:
        assert local.weight_bytes == specs.from_catalog(repo_id).weight_bytes  # no MTP layer
        # ...which is kept apart for a draft: layer 61 (about 11.7 GB in FP8 with its scales),
        # less its copies of the embedding and LM head, which the draft shares with the target
        assert local.mtp_layers == 1 and 11.0e9 < local.mtp_bytes < 12.5e9
