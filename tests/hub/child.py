"""vramtop run in a child process pointed at the stand-in Hub and registry (huggingface_hub reads
HF_ENDPOINT and HF_TOKEN when imported, so a process of its own gets each test's settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from standin import StandInHub, StandInRegistry

_RESOLVE = """
import dataclasses, json, sys
from vramtop.fit import specs
for name in sys.argv[1:]:
    try:
        print(json.dumps(dataclasses.asdict(specs.resolve(name))))
    except specs.SpecError as exc:
        print(json.dumps({"error": str(exc)}))
"""


class Child:
    """vramtop in a child process with this test's Hub, registry, caches and token."""

    def __init__(self, tmp: Path, hub: StandInHub | None, registry: StandInRegistry | None) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        self.env.update({
            "HF_HOME": str(tmp / "hf-home"), "XDG_CACHE_HOME": str(tmp / "xdg-cache"),
            "HF_ENDPOINT": hub.url if hub else "http://127.0.0.1:9", "HF_HUB_DISABLE_TELEMETRY": "1",
            "VRAMTOP_OLLAMA_REGISTRY": registry.url if registry else "http://127.0.0.1:9",
            "OLLAMA_HOST": "127.0.0.1:9", "OLLAMA_MODELS": str(tmp / "ollama-models"),
        })
        self.spec_cache = tmp / "xdg-cache" / "vramtop" / "specs"
        self.hf_cache = tmp / "hf-home" / "hub"

    def resolve(self, *names: str, **env: str) -> list[dict]:
        out = subprocess.run([sys.executable, "-c", _RESOLVE, *names], env={**self.env, **env},
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    def fit(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vramtop", "fit", *args, "--on", "1x80GiB"],
                              env={**self.env, **env}, capture_output=True, text=True, timeout=120)
