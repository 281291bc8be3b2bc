"""The built-in catalog is parsed by libyaml's parser (PyYAML's ``CSafeLoader``), a sixth of the
pure-Python parser's time at every ``vramtop fit``; with the same safe constructor it must give
the very catalog the pure-Python parser gives, and a PyYAML built without libyaml still reads it."""

from pathlib import Path

import pytest
import yaml

from vramtop.fit import specs


def test_the_catalog_is_the_same_through_either_parser(monkeypatch):
    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("this PyYAML was built without libyaml: only the pure-Python parser is there")
    specs.catalog.cache_clear()
    fast = specs.catalog()
    monkeypatch.delattr(yaml, "CSafeLoader")
    specs.catalog.cache_clear()
    try:
        plain = specs.catalog()
    finally:
        specs.catalog.cache_clear()
    entries = Path(specs.__file__).with_name("catalog.yaml").read_text().count("\n- id: ")
    assert len(fast) == entries and fast == plain
    assert [s.name for s in fast] == [s.name for s in plain]
