"""The what-if form's rules and its memory between runs, without a screen."""

from __future__ import annotations

import os

import pytest
import yaml

from vramtop.whatif_state import (
    OLLAMA,
    RECENT_LIMIT,
    VLLM,
    FormState,
    ModelChoice,
    WhatIfMemory,
    default_state_path,
    describe,
    load_memory,
    match_models,
    parse_form,
    save_memory,
)


def test_blank_fields_mean_default_and_a_model_is_required():
    parsed = parse_form(FormState())
    assert parsed.errors == {"model": "pick a model"}
    assert parsed.values["tensor_parallel_size"] is None
    assert parsed.values["gpus"] is None
    parsed = parse_form(FormState(model="google/gemma-3-4b-it", gpus="auto", max_model_len="auto"))
    assert parsed.ok
    assert parsed.values["max_model_len"] is None


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        ("gpu_memory_utilization", "0.85", 0.85),
        ("gpu_memory_utilization", "90%", 0.9),
        ("gpu_memory_utilization", "1", 1.0),
        ("max_model_len", "8192", 8192),
        ("max_model_len", "8k", 8192),
        ("max_model_len", "32K", 32768),
        ("max_model_len", "16,384", 16384),
        ("tensor_parallel_size", " 2 ", 2),
        ("gpus", "0,1", (0, 1)),
        ("gpus", "2 3", (2, 3)),
        ("replicas", "2", 2),
        ("quantization", "q4_K_M", "q4_K_M"),
    ],
)
def test_good_values_parse(field, text, value):
    parsed = parse_form(FormState(model="m", **{field: text}))
    assert parsed.ok, parsed.errors
    assert parsed.values[field] == value


@pytest.mark.parametrize(
    ("field", "text", "says"),
    [
        ("gpu_memory_utilization", "1.5", "at most 1"),
        ("gpu_memory_utilization", "0", "above 0"),
        ("gpu_memory_utilization", "0.", "above 0"),  # half-typed: marked, no crash
        ("gpu_memory_utilization", "abc", "between 0 and 1"),
        ("tensor_parallel_size", "0", "at least 1"),
        ("tensor_parallel_size", "2.5", "whole number"),
        ("tensor_parallel_size", "2k", "whole number"),
        ("max_model_len", "-1", "whole number"),
        ("gpus", "0,0", "twice"),
        ("gpus", "zero", "GPU indices"),
        ("replicas", "0", "at least 1"),
        ("kv_cache_dtype", "fp8 e4m3", "one word"),
    ],
)
def test_bad_values_are_marked_with_the_reason(field, text, says):
    parsed = parse_form(FormState(model="m", **{field: text}))
    assert field in parsed.errors
    assert text.strip() in parsed.errors[field] or text in parsed.errors[field]
    assert says in parsed.errors[field]


def test_gpus_are_checked_against_the_node_and_the_tensor_parallel_size():
    on_four = (0, 1, 2, 3)
    assert "no GPU 7" in parse_form(FormState(model="m", gpus="0,7"), on_four).errors["gpus"]
    parsed = parse_form(FormState(model="m", gpus="0", tensor_parallel_size="2"), on_four)
    assert "tensor parallel is 2" in parsed.errors["gpus"]
    assert parse_form(FormState(model="m", gpus="2,3", tensor_parallel_size="2"), on_four).ok


def test_fields_of_the_other_engine_are_neither_judged_nor_sent():
    form = FormState(model="m", engine=OLLAMA, max_num_seqs="bad", tensor_parallel_size="x", num_ctx="8k")
    parsed = parse_form(form)
    assert parsed.ok
    assert "max_num_seqs" not in parsed.values and "tensor_parallel_size" not in parsed.values
    assert parsed.values["num_ctx"] == 8192
    assert "num_ctx" not in parse_form(form.with_(engine=VLLM, max_num_seqs="", tensor_parallel_size="")).values


def test_describe_names_what_differs():
    form = FormState(model="medgemma-4b-it:q8", engine=OLLAMA, num_ctx="8192", stopped=("vllm:4000",))
    text = describe(form)
    assert "medgemma-4b-it:q8" in text and "Ollama" in text and "ctx 8192" in text and "stopped" in text
    assert "TP=2" in describe(FormState(model="m", tensor_parallel_size="2"))


def test_memory_round_trips_through_the_state_file(tmp_path):
    path = tmp_path / "vramtop" / "whatif.yaml"
    a = FormState(model="medgemma-27b-it:q8", engine=OLLAMA)
    b = FormState(model="google/medgemma-4b-it", tensor_parallel_size="2", gpu_memory_utilization="0.85",
                  stopped=("vllm:4000",))
    memory = WhatIfMemory().remember(a).remember(b).pin(a).pin(b)
    assert save_memory(memory, path) is None
    loaded, warning = load_memory(path)
    assert warning is None
    assert loaded == memory
    assert loaded.current == b and loaded.recent == (b, a) and loaded.pins == (a, b)
    # Only what differs from the defaults is written: the file stays short and readable.
    data = yaml.safe_load(path.read_text())
    assert data["pins"][0] == {"model": "medgemma-27b-it:q8", "engine": "ollama"}


def test_recent_keeps_newest_first_without_duplicates_and_is_bounded():
    memory = WhatIfMemory()
    forms = [FormState(model=f"m{i}") for i in range(RECENT_LIMIT + 3)]
    for f in forms:
        memory = memory.remember(f)
    memory = memory.remember(forms[-3])
    assert memory.recent[0] == forms[-3]
    assert len(memory.recent) == RECENT_LIMIT
    assert len(set(memory.recent)) == RECENT_LIMIT
    # A form without a model is current but not a candidate worth remembering.
    blank = memory.remember(FormState())
    assert blank.current == FormState() and blank.recent == memory.recent


def test_pin_twice_keeps_one_and_unpin_removes():
    a, b = FormState(model="a"), FormState(model="b")
    memory = WhatIfMemory().pin(a).pin(a).pin(b)
    assert memory.pins == (a, b)
    assert memory.unpin(0).pins == (b,)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("version: 1\npins: [\n", "line"),
        ("- just\n- a list\n", "mapping"),
        ("version: 99\n", "version"),
        ("version: 1\npins:\n  - {model: m, colour: red}\n", "colour"),
        ("version: 1\npins:\n  - {model: m, engine: tgi}\n", "tgi"),
        ("version: 1\nrecent: {model: m}\n", "'recent' must be a list"),
        ("version: 1\npins:\n  - {model: m, stopped: vllm:1}\n", "stopped"),
    ],
)
def test_a_corrupt_state_file_is_one_line_and_a_fresh_start(tmp_path, text, says):
    path = tmp_path / "whatif.yaml"
    path.write_text(text)
    memory, warning = load_memory(path)
    assert memory == WhatIfMemory()
    assert warning is not None and "\n" not in warning
    assert str(path) in warning and says in warning and "starting fresh" in warning


def test_unreadable_state_and_unwritable_directory_are_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads and writes through permissions")
    path = tmp_path / "whatif.yaml"
    path.write_text("version: 1\n")
    path.chmod(0)
    memory, warning = load_memory(path)
    assert memory == WhatIfMemory() and "cannot read" in warning
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert "cannot save" in save_memory(WhatIfMemory(), locked / "sub" / "whatif.yaml")


def test_a_state_path_that_is_a_directory_is_one_line(tmp_path):
    path = tmp_path / "whatif.yaml"
    path.mkdir()
    memory, warning = load_memory(path)
    assert memory == WhatIfMemory() and warning and "starting fresh" in warning
    assert "cannot save" in save_memory(WhatIfMemory(), path)


def test_missing_file_is_a_quiet_fresh_start(tmp_path):
    assert load_memory(tmp_path / "none.yaml") == (WhatIfMemory(), None)


def test_state_path_follows_xdg_state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_path() == tmp_path / "vramtop" / "whatif.yaml"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_path() == tmp_path / "home" / ".local" / "state" / "vramtop" / "whatif.yaml"


def test_model_search_finds_by_words_and_by_letters_in_order():
    choices = (
        ModelChoice("google/gemma-3-27b-it"),
        ModelChoice("google/medgemma-4b-it"),
        ModelChoice("medgemma-27b-it:q8", "ollama"),
        ModelChoice("meta-llama/Llama-3.1-8B-Instruct"),
    )
    names = lambda q: [c.name for c in match_models(q, choices)]  # noqa: E731
    assert names("medgemma") == ["medgemma-27b-it:q8", "google/medgemma-4b-it"]  # starts-with first
    assert names("gem 4b") == ["google/medgemma-4b-it"]
    assert names("GEM4B") == ["google/medgemma-4b-it"]  # letters in order, any case
    assert names("llama 8b") == ["meta-llama/Llama-3.1-8B-Instruct"]
    assert names("qwen") == []
    assert names("") == [c.name for c in choices]
    assert len(match_models("", choices, limit=2)) == 2
