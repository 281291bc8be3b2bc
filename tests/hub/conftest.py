"""Fixtures: a stand-in Hub and Ollama registry on 127.0.0.1 (standin.py), and vramtop run in a
child process pointed at them (child.py)."""

from __future__ import annotations

import pytest

from child import Child
from standin import StandInHub, StandInRegistry, serve_hub, serve_registry


@pytest.fixture
def hub():
    state = StandInHub()
    server = serve_hub(state)
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def registry():
    state = StandInRegistry()
    server = serve_registry(state)
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def child(tmp_path, hub, registry):
    return Child(tmp_path, hub, registry)
