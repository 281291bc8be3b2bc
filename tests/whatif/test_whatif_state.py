"""The what-if form's rules and its memory between runs, without a screen."""

from __future__ import annotations

import os

import pytest
import yaml

from vramtop.fit.fields import ModelChoice
from vramtop.fit.verdict import INVALID, OLLAMA, RED, VLLM
from vramtop.paths import whatif_state_file
from vramtop.sources.demo import DemoSource
from vramtop.widgets.whatif.assess import field_defaults, verdict
from vramtop.widgets.whatif.form import FIELD_LABELS, FormState, describe, match_models, with_changes
from vramtop.widgets.whatif.persist import RECENT_LIMIT, WhatIfMemory, load_memory, save_memory


DEMO = DemoSource(clock=lambda: 1_700_000_000.0).sample()
SEED_TP2 = FormState(model="google/medgemma-4b-it", tensor_parallel_size="2",
                     gpu_memory_utilization="0.85", max_model_len="8192")


def test_a_form_without_a_model_or_without_a_node_is_invalid_and_says_so():
    result = verdict(FormState(), DEMO)
    assert result.verdict == INVALID and result.headline == "pick a model"
    result = verdict(SEED_TP2, None)
    assert result.verdict == INVALID and "no picture of the node" in result.headline


def test_blank_and_auto_fields_take_the_engines_defaults():
    blank = verdict(FormState(model="google/medgemma-4b-it"), DEMO)
    spelled = verdict(FormState(model="google/medgemma-4b-it", gpus="auto", max_model_len="auto",
                               gpu_memory_utilization="0.9", tensor_parallel_size="1"), DEMO)
    assert blank.verdict != INVALID
    assert (blank.verdict, blank.headline) == (spelled.verdict, spelled.headline)


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("gpu_memory_utilization", "1.5"),
        ("gpu_memory_utilization", "0."),  # half-typed: marked, no crash
        ("gpu_memory_utilization", "abc"),
        ("tensor_parallel_size", "2.5"),
        ("tensor_parallel_size", "0"),
        ("max_model_len", "-1"),
        ("gpus", "zero"),
        ("replicas", "0"),
        ("kv_cache_dtype", "fp8 e4m3"),
    ],
)
def test_a_bad_text_is_invalid_and_the_headline_names_the_field(field, text):
    result = verdict(SEED_TP2.with_(**{field: text}), DEMO)
    assert result.verdict == INVALID
    assert set(result.errors) == {field}
    assert FIELD_LABELS[field] in result.headline


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"tensor_parallel_size": "3"}, "tensor_parallel_size", "divisible"),  # 8 heads
        ({"gpus": "0,7"}, "gpus", "7"),  # the demo node has GPUs 0-3
        ({"stopped": ("vllm:99999",)}, "stopped", "vllm:99999"),
        ({"model": "no-such-model-xyz"}, "model", "no-such-model-xyz"),
    ],
)
def test_values_the_engine_refuses_are_marked_on_their_field(changes, field, says):
    result = verdict(SEED_TP2.with_(**changes), DEMO)
    assert result.verdict == INVALID
    assert field in result.errors and says in result.errors[field]


def test_fields_of_the_other_engine_are_neither_judged_nor_sent():
    ollama = FormState(model="amsaravi/medgemma-4b-it:q8", engine=OLLAMA, max_num_seqs="bad",
                       tensor_parallel_size="x", num_ctx="8k")
    result = verdict(ollama, DEMO)
    assert result.verdict != INVALID, result.errors
    assert result.ollama_plan.num_ctx == 8192
    # Back on vLLM, the Ollama fields are ignored and the vLLM ones judged.
    assert set(verdict(ollama.with_(engine=VLLM, tensor_parallel_size=""), DEMO).errors) == {"max_num_seqs"}


def test_a_suggestion_applied_to_the_form_gives_the_verdict_it_promised():
    result = verdict(SEED_TP2, DEMO)
    assert result.verdict == RED and result.suggestions
    for suggestion in result.suggestions:
        applied = with_changes(SEED_TP2, suggestion.changes)
        assert applied != SEED_TP2
        assert verdict(applied, DEMO).verdict == suggestion.verdict


def test_with_changes_writes_values_as_the_form_holds_them():
    form = with_changes(FormState(model="m", gpus="0,1"),
                        {"gpu_memory_utilization": 0.85, "gpus": None, "stopped": ("ray:4000",), "num_ctx": 8192})
    assert form.gpu_memory_utilization == "0.85" and form.gpus == "" and form.num_ctx == "8192"
    assert form.stopped == ("ray:4000",)
    assert with_changes(form, {"gpus": (2, 3)}).gpus == "2,3"


def test_placeholders_show_what_a_blank_field_stands_for():
    ollama = FormState(model="medgemma-27b-it:q8", engine=OLLAMA)
    result = verdict(ollama, DEMO)
    shown = field_defaults(ollama, result, DEMO)
    assert shown["quantization"].startswith("q8_0")  # from the ":q8" tag
    assert shown["num_ctx"].startswith(str(result.ollama_plan.num_ctx))
    vllm = FormState(model="google/medgemma-4b-it")
    shown = field_defaults(vllm, verdict(vllm, DEMO), DEMO)
    assert shown["gpu_memory_utilization"].startswith("0.9")
    assert shown["max_model_len"].startswith("131072")


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
    assert whatif_state_file() == tmp_path / "vramtop" / "whatif.yaml"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert whatif_state_file() == tmp_path / "home" / ".local" / "state" / "vramtop" / "whatif.yaml"


def test_model_search_finds_by_words_and_by_letters_in_order():
    choices = (
        ModelChoice("google/gemma-3-27b-it", "catalog", ""),
        ModelChoice("google/medgemma-4b-it", "catalog", ""),
        ModelChoice("medgemma-27b-it:q8", "ollama", ""),
        ModelChoice("meta-llama/Llama-3.1-8B-Instruct", "catalog", "", aliases=("llama3.1:8b",)),
    )
    names = lambda q: [c.name for c in match_models(q, choices)]  # noqa: E731
    assert names("medgemma") == ["medgemma-27b-it:q8", "google/medgemma-4b-it"]  # starts-with first
    assert names("llama3.1:8b") == ["meta-llama/Llama-3.1-8B-Instruct"]  # by an alias
    assert names("gem 4b") == ["google/medgemma-4b-it"]
    assert names("GEM4B") == ["google/medgemma-4b-it"]  # letters in order, any case
    assert names("llama 8b") == ["meta-llama/Llama-3.1-8B-Instruct"]
    assert names("qwen") == []
    assert names("") == [c.name for c in choices]
    assert len(match_models("", choices, limit=2)) == 2


@pytest.mark.parametrize("kind", ["empty directory", "not a gguf", "garbage config"])
def test_a_model_path_that_cannot_be_read_is_one_line_on_the_model_field(tmp_path, kind):
    if kind == "empty directory":
        path = tmp_path / "model"
        path.mkdir()
    elif kind == "not a gguf":
        path = tmp_path / "model.gguf"
        path.write_bytes(b"GGUF\x00\x01broken")
    else:
        path = tmp_path / "model"
        path.mkdir()
        (path / "config.json").write_text("{not json")
    result = verdict(FormState(model=str(path)), DEMO)
    assert result.verdict == INVALID
    assert "\n" not in result.errors["model"] and str(path) in result.errors["model"]


def test_two_replicas_of_one_deployment_are_two_distinct_as_if_stopped_choices():
    from vramtop.analysis.instances import Instance
    from vramtop.fit.placement import NodeView, find_instance
    from vramtop.ray.link import ReplicaLink

    def replica(rid: str, pid: int, gpus: tuple[int, ...]) -> Instance:
        return Instance(f"ray:{pid}", "vllm", "llm/LLMServer", pid, (), {g: 20_000 for g in gpus},
                        replica=ReplicaLink("llm", "LLMServer", rid, "placement group"))

    a, b = replica("aaaa1111", 100, (0, 1)), replica("bbbb2222", 200, (2, 3))
    from vramtop.widgets.whatif.form import instance_label

    assert instance_label(a) == "llm/LLMServer#aaaa1111 (GPUs 0,1, 40,000 MiB)"
    assert instance_label(a) != instance_label(b)
    node = NodeView("n", (), (a, b))
    assert find_instance(node, "llm/LLMServer#bbbb2222") is b
    assert find_instance(node, "llm/LLMServer") is a  # the name alone: the first that has it
