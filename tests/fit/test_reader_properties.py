"""Any bytes as a model's config.json, safetensors header or GGUF file give a spec or the one
documented error (``SpecError``), never another exception (hypothesis)."""

import json
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vramtop.fit import specs
from vramtop.fit.specs import SpecError

FIELDS = ["num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim",
          "vocab_size", "intermediate_size", "max_position_embeddings", "sliding_window", "layer_types",
          "sliding_window_pattern", "kv_lora_rank", "num_experts", "num_experts_per_tok",
          "full_attention_interval", "hybrid_override_pattern", "attn_layer_period", "attn_layer_offset",
          "attn_type_list", "linear_num_value_heads", "linear_num_key_heads", "linear_key_head_dim",
          "mamba_num_heads", "mamba_head_dim", "ssm_state_size", "n_groups", "quantization_config",
          "text_config", "tie_word_embeddings", "torch_dtype", "mamba_ssm_dtype"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.sampled_from(FIELDS + ["quant_method"]), inner,
                                                               max_size=6),
    max_leaves=30)
plausible = st.fixed_dictionaries({"num_hidden_layers": st.integers(1, 8), "hidden_size": st.integers(1, 4096),
                                   "num_attention_heads": st.integers(1, 64), "vocab_size": st.integers(1, 10**5)})
configs = st.tuples(plausible, st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)).map(
    lambda t: {**t[0], **t[1]})
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _in_dir(files: dict[str, bytes]) -> Path:
    d = Path(tempfile.mkdtemp())
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def _spec_or_documented_error(path: Path):
    try:
        s = specs.resolve(str(path))
    except SpecError as exc:
        assert "\n" not in str(exc)
        return None
    assert s.layers >= 1 and s.weight_bytes > 0 and 1 <= s.kv_heads <= s.heads
    return s


@SETTINGS
@given(configs)
def test_any_config_mapping_gives_a_spec_or_one_line(cfg):
    _spec_or_documented_error(_in_dir({"config.json": json.dumps(cfg).encode()}))


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_as_config_json(data):
    _spec_or_documented_error(_in_dir({"config.json": data}))


headers = st.dictionaries(st.text(max_size=8), st.fixed_dictionaries(
    {"dtype": st.sampled_from(["BF16", "F32", "I32", "U8", "F8_E4M3", "Q9", ""]) | json_values,
     "shape": st.lists(st.integers(-4, 2**41), max_size=4) | json_values,
     "data_offsets": st.lists(st.integers(-64, 2**41), max_size=3) | json_values}), max_size=4)


@SETTINGS
@given(headers, st.integers(0, 256), st.one_of(st.none(), st.integers(0, 2**64 - 1)))
def test_any_safetensors_header_gives_a_spec_or_one_line(header, data_len, length):
    raw = json.dumps(header).encode()
    blob = struct.pack("<Q", len(raw) if length is None else length) + raw + b"\0" * data_len
    cfg = json.dumps({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 100})
    _spec_or_documented_error(_in_dir({"config.json": cfg.encode(), "model.safetensors": blob}))


@SETTINGS
@given(st.binary(max_size=600))
def test_any_bytes_after_the_gguf_magic(data):
    pytest.importorskip("gguf")
    d = _in_dir({"m.gguf": b"GGUF" + data})
    _spec_or_documented_error(d / "m.gguf")
