"""vramtop finds the Hugging Face cache where huggingface_hub itself does, without importing the
client: each environment below is checked against the real client's constants in a child process
(the client reads its variables at import time)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_VARS = ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME")


@pytest.mark.parametrize("env", [
    {},
    {"XDG_CACHE_HOME": "/srv/cache"},
    {"HF_HOME": "/srv/hf", "XDG_CACHE_HOME": "/srv/cache"},
    {"HUGGINGFACE_HUB_CACHE": "/srv/old-name"},
    {"HF_HUB_CACHE": "/srv/hub", "HUGGINGFACE_HUB_CACHE": "/srv/old-name", "HF_HOME": "/srv/hf"},
])
def test_the_hub_cache_is_where_huggingface_hub_puts_it(env):
    child_env = {k: v for k, v in os.environ.items() if k not in _VARS}
    child_env.update(env)
    code = ("import huggingface_hub.constants as c; from vramtop import paths; "
            "print(c.HF_HUB_CACHE); print(paths.hf_hub_cache())")
    theirs, ours = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True,
                                  text=True, check=True, timeout=60).stdout.splitlines()
    assert ours == theirs
