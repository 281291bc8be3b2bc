"""Hostile model inputs to ``vramtop fit``: special files, huge files, config.json and safetensors
headers with every field wrong. Each runs the real CLI in a child process under a memory limit
and asserts exit status 3, one line on stderr naming the cause, and a time bound; none may
answer GREEN, print a traceback, hang or allocate gigabytes."""

import json
import os
import resource
import struct
import subprocess
import sys
import time

import pytest

from vramtop.fit import specs
from vramtop.fit.specs import SpecError

MEMORY_LIMIT = 1536 * 1024**2  # address space of the child: gigabytes allocated would fail here
TIME_LIMIT_S = 20  # wall clock for a start-up of the CLI on a loaded machine; a hang is killed


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def fit(*args: str) -> tuple[int, str, str, float]:
    start = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "vramtop", "fit", *args, "--on", "1x80GiB"],
                       capture_output=True, text=True, timeout=TIME_LIMIT_S, preexec_fn=_limit_memory)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - start


def assert_refused(args, why):
    rc, out, err, took = fit(*args)
    assert rc == 3, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and why in lines[0], err
    assert "Traceback" not in err and out == ""
    assert took < TIME_LIMIT_S


CONFIG = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
          "vocab_size": 100, "intermediate_size": 128, "max_position_embeddings": 4096}


def _model_dir(tmp_path, cfg=None, raw=None):
    (tmp_path / "config.json").write_text(raw if raw is not None else json.dumps(cfg))
    return str(tmp_path)


def _safetensors(path, header: dict, data: bytes = b"", length: int | None = None):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)


def test_dev_zero_is_refused_without_reading_it():
    assert_refused(["/dev/zero"], "not a regular file")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    assert_refused([str(fifo)], "not a regular file")


def test_a_1_gb_file_that_is_not_gguf_is_refused_after_four_bytes(tmp_path):
    big = tmp_path / "weights.bin"
    with open(big, "wb") as f:
        f.truncate(1 << 30)  # sparse: a gigabyte to read, none on disk
    assert_refused([str(big)], "neither a model directory, a config.json nor a GGUF file")


@pytest.mark.parametrize("change, why", [
    ({"num_hidden_layers": "2"}, "num_hidden_layers must be a whole number"),
    ({"hidden_size": -64}, "hidden_size = -64 is outside"),
    ({"num_key_value_heads": -2}, "num_key_value_heads = -2 is outside"),
    ({"num_key_value_heads": 8}, "num_key_value_heads = 8 is outside 1..4"),
    ({"vocab_size": 10**12}, "vocab_size = 1000000000000 is outside"),
    ({"num_hidden_layers": 10**9}, "num_hidden_layers = 1000000000 is outside"),
    ({"max_position_embeddings": True}, "max_position_embeddings must be a whole number"),
    ({"sliding_window": -1}, "sliding_window = -1 is outside"),
    ({"layer_types": "full" * 10_000}, "layer_types must be a list"),
])
def test_config_fields_of_the_wrong_kind_or_size_are_named(tmp_path, change, why):
    assert_refused([_model_dir(tmp_path, {**CONFIG, **change})], why)


@pytest.mark.parametrize("raw, why", [
    ('{"num_hidden_layers": NaN, "hidden_size": 64}', "num_hidden_layers must be a whole number"),
    ('{"num_hidden_layers": 1e999, "hidden_size": 64}', "num_hidden_layers must be a whole number"),
    ('{"num_hidden_layers": ' + "9" * 5000 + "}", "malformed JSON"),
    ("[" * 100_000 + "]" * 100_000, "malformed JSON"),
    ("\xff\xfe garbage", "malformed JSON"),
], ids=["nan", "infinite", "5000-digit", "nested-100000-deep", "not-utf8"])
def test_config_json_that_is_not_numbers_is_one_line(tmp_path, raw, why):
    assert_refused([_model_dir(tmp_path, raw=raw)], why)


def test_a_config_json_of_gigabytes_is_not_read(tmp_path):
    with open(tmp_path / "config.json", "wb") as f:
        f.truncate(3 << 30)
    assert_refused([str(tmp_path)], "larger than 4 MiB")


@pytest.mark.parametrize("header, data, length, why", [
    ({"w": {"dtype": "BF16", "shape": [4, 4], "data_offsets": [-32, 0]}}, b"\0" * 32, None, "offsets outside the file"),
    ({"w": {"dtype": "BF16", "shape": [4, 4], "data_offsets": [0, 32]}}, b"", None, "offsets outside the file"),
    ({"w": {"dtype": "BF16", "shape": [4, 4], "data_offsets": [0, 32]}}, b"\0" * 32, 1 << 40, "header of"),
    ({"w": {"dtype": "BF16", "shape": [0], "data_offsets": [0, 0]}}, b"", None, "0 bytes"),
    ({"w": {"dtype": "BF16", "shape": [-4, 4], "data_offsets": [0, 32]}}, b"\0" * 32, None, "bad shape"),
    ({"w": {"dtype": "BF16", "shape": [1 << 39, 1 << 39], "data_offsets": [0, 32]}}, b"\0" * 32, None,
     "its offsets hold 32 bytes"),
    ({"w": {"dtype": "Q9", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 8, None, "dtype 'Q9'"),
    ({"w": [1, 2]}, b"", None, "is not a mapping"),
])
def test_safetensors_headers_that_lie_about_their_file_are_one_line(tmp_path, header, data, length, why):
    _model_dir(tmp_path, CONFIG)
    _safetensors(tmp_path / "model.safetensors", header, data, length)
    assert_refused([str(tmp_path)], why)


def test_a_safetensors_fifo_in_a_model_directory_does_not_block(tmp_path):
    _model_dir(tmp_path, CONFIG)
    os.mkfifo(tmp_path / "model.safetensors")
    assert_refused([str(tmp_path)], "not a regular file")


@pytest.mark.parametrize("args, why", [
    (["--params", "1000000000000000B"], "larger than any model"),
    (["--params", "9" * 400 + "B"], "--params must look like 27B"),
])
def test_absurd_sizes_are_bounded(args, why):
    assert_refused(args, why)


def test_an_absurd_gpu_on_paper_is_refused():
    p = subprocess.run([sys.executable, "-m", "vramtop", "fit", "--params", "7B", "--on", "1x" + "9" * 30 + "GiB"],
                       capture_output=True, text=True, timeout=TIME_LIMIT_S, preexec_fn=_limit_memory)
    assert p.returncode == 3 and len(p.stderr.strip().splitlines()) == 1 and "--on" in p.stderr


@pytest.mark.parametrize("name", ["/dev/zero", "\0bad", "x" * 5000, "~nobody-such-user/model"],
                         ids=["device", "nul", "long", "no-such-home"])
def test_the_resolver_raises_only_its_documented_error(name):
    try:
        specs.resolve(name)
    except SpecError as exc:
        assert "\n" not in str(exc)


def test_the_what_if_panel_takes_such_a_directory_as_an_invalid_model(tmp_path):
    from vramtop.widgets.whatif.assess import verdict
    from vramtop.widgets.whatif.form import FormState

    _model_dir(tmp_path, {**CONFIG, "num_key_value_heads": -2})
    result = verdict(FormState(model=str(tmp_path)), None)
    assert result.verdict == "invalid" and "num_key_value_heads" in result.errors["model"]


@pytest.mark.parametrize("option, value, why", [
    ("--limit-mm-per-prompt", '{"image": ' + "[" * 1990, "must be JSON"),  # past json's nesting depth
    ("--speculative-config", '{"model": ' + "[" * 1990, "must be JSON"),
    ("--limit-mm-per-prompt", '{"\x1b[31mimage": 2}', "must be JSON"),  # raw: not JSON, echoed plain
    ("--limit-mm-per-prompt", '{"\\u001b[31mimage": 2}', "a modality is a word"),  # escaped: in the value
    ("--speculative-config", '{"method": "\\u001b]0;owned\\u0007mtp"}', "unknown speculative method"),
    ("--speculative-config", '{"\\u001b[2Jmethod": "mtp"}', "is not modelled"),
])
def test_vllm_json_flags_that_are_hostile_are_one_plain_line(option, value, why):
    """vLLM's JSON-valued flags as vramtop fit reads them: nesting past the JSON parser's depth
    and terminal control sequences give the one line, with nothing of the sequences in it."""
    assert_refused(["google/medgemma-4b-it", option, value], why)
    rc, out, err, took = fit("google/medgemma-4b-it", option, value)
    assert "\x1b" not in err and "\x07" not in err
