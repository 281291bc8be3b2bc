"""Hub repositories as published: real config.json files, safetensors headers with the models' own
tensor names, dtypes and shapes, and the file layout of each repository (shards and their index,
``original/`` copies, a ``consolidated.safetensors`` beside the shards).

Tensor names and shapes are those of transformers' decoder classes: ``LlamaForCausalLM`` and
``MistralForCausalLM`` (models/llama/modeling_llama.py, models/mistral/modeling_mistral.py),
``Qwen2ForCausalLM`` adds q/k/v biases (models/qwen2/modeling_qwen2.py), ``Qwen3ForCausalLM``
adds per-head q/k norms (models/qwen3/modeling_qwen3.py); tied embeddings have no lm_head. The
mixture-of-experts layers: ``Qwen3MoeForCausalLM`` has a router ``mlp.gate`` and
``mlp.experts.<e>.{gate,up,down}_proj`` of moe_intermediate_size (models/qwen3_moe/
modeling_qwen3_moe.py), ``MixtralForCausalLM`` ``block_sparse_moe.gate`` and
``block_sparse_moe.experts.<e>.w1/w2/w3`` (models/mixtral/modeling_mixtral.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from standin import Blob, Repo, safetensors_blob

CONFIGS = Path(__file__).parent / "configs"
MODELS = tuple(sorted(p.name.replace("__", "/") for p in CONFIGS.iterdir() if p.is_dir()))


def config(repo_id: str) -> dict:
    return json.loads((CONFIGS / repo_id.replace("/", "__") / "config.json").read_text())


def decoder_tensors(cfg: dict, dtype: str = "BF16") -> list[tuple[str, str, list[int]]]:
    hidden, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or hidden // heads
    inter, vocab = cfg["intermediate_size"], cfg["vocab_size"]
    kind = cfg["model_type"]
    qwen2, qwen3 = kind == "qwen2", kind in ("qwen3", "qwen3_moe")
    out = [("model.embed_tokens.weight", dtype, [vocab, hidden])]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", dtype, [hidden]),
                (p + "post_attention_layernorm.weight", dtype, [hidden]),
                (p + "self_attn.q_proj.weight", dtype, [heads * hd, hidden]),
                (p + "self_attn.k_proj.weight", dtype, [kv * hd, hidden]),
                (p + "self_attn.v_proj.weight", dtype, [kv * hd, hidden]),
                (p + "self_attn.o_proj.weight", dtype, [hidden, heads * hd])]
        if kind == "qwen3_moe":
            experts, moe = cfg["num_experts"], cfg["moe_intermediate_size"]
            out.append((p + "mlp.gate.weight", dtype, [experts, hidden]))
            for e in range(experts):
                out += [(p + f"mlp.experts.{e}.gate_proj.weight", dtype, [moe, hidden]),
                        (p + f"mlp.experts.{e}.up_proj.weight", dtype, [moe, hidden]),
                        (p + f"mlp.experts.{e}.down_proj.weight", dtype, [hidden, moe])]
        elif kind == "mixtral":
            experts = cfg["num_local_experts"]
            out.append((p + "block_sparse_moe.gate.weight", dtype, [experts, hidden]))
            for e in range(experts):
                out += [(p + f"block_sparse_moe.experts.{e}.w1.weight", dtype, [inter, hidden]),
                        (p + f"block_sparse_moe.experts.{e}.w2.weight", dtype, [hidden, inter]),
                        (p + f"block_sparse_moe.experts.{e}.w3.weight", dtype, [inter, hidden])]
        else:
            out += [(p + "mlp.gate_proj.weight", dtype, [inter, hidden]),
                    (p + "mlp.up_proj.weight", dtype, [inter, hidden]),
                    (p + "mlp.down_proj.weight", dtype, [hidden, inter])]
        if qwen2:
            out += [(p + "self_attn.q_proj.bias", dtype, [heads * hd]),
                    (p + "self_attn.k_proj.bias", dtype, [kv * hd]),
                    (p + "self_attn.v_proj.bias", dtype, [kv * hd])]
        if qwen3:
            out += [(p + "self_attn.q_norm.weight", dtype, [hd]), (p + "self_attn.k_norm.weight", dtype, [hd])]
    out.append(("model.norm.weight", dtype, [hidden]))
    if not cfg.get("tie_word_embeddings"):
        out.append(("lm_head.weight", dtype, [vocab, hidden]))
    return out


def sharded(tensors: list, shards: int) -> dict[str, Blob]:
    """Shards named as transformers names them, and the index whose weight_map lists them."""
    files: dict[str, Blob] = {}
    weight_map: dict[str, str] = {}
    per = -(-len(tensors) // shards)
    total = 0
    for k in range(shards):
        name = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        part = tensors[k * per:(k + 1) * per]
        files[name] = safetensors_blob(part)
        total += files[name].size
        weight_map.update({t[0]: name for t in part})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    files["model.safetensors.index.json"] = Blob.of(json.dumps(index).encode())
    return files


def repository(repo_id: str, **kwargs) -> Repo:
    """The repository as the Hub lays it out (for the five published configs)."""
    cfg = config(repo_id)
    tensors = decoder_tensors(cfg)
    files = {"config.json": Blob.of(json.dumps(cfg, indent=2).encode()),
             "generation_config.json": Blob.of(b'{"do_sample": true}'),
             "tokenizer.json": Blob(b"{", 9_000_000)}
    if repo_id == "meta-llama/Llama-3.2-1B-Instruct":
        files["model.safetensors"] = safetensors_blob(tensors)
    else:
        files.update(sharded(tensors, 16 if cfg.get("num_experts") or cfg.get("num_local_experts") else 4))
    if repo_id.startswith("meta-llama/"):  # Meta's own checkpoint format beside the HF one
        files["original/consolidated.00.pth"] = Blob(b"PK", 2_000_000_000)
        files["original/params.json"] = Blob.of(b"{}")
    if repo_id.startswith("mistralai/"):  # Mistral's format: the same weights once more
        files["consolidated.safetensors"] = safetensors_blob(
            [(n.replace("model.", ""), d, s) for n, d, s in tensors])
    return Repo(files, **kwargs)


# ---- GGUF files, as llama.cpp's convert_hf_to_gguf.py names the tensors --------------------------

GGML = {"Q8_0": (8, 32, 34, 7), "Q4_K_M": (12, 256, 144, 15)}  # type, block, bytes/block, file_type


def gguf_blob(cfg: dict, quant: str, tmp: Path) -> Blob:
    """A GGUF file of ``cfg``'s model in ``quant``: the real header (metadata, vocabulary, tensor
    infos), zeros for the data. 2-D weights in ``quant``, norms and biases in F32."""
    import gguf
    import numpy as np

    ggml_type, block, block_bytes, file_type = GGML[quant]
    arch = {"qwen2": "qwen2", "llama": "llama", "mistral": "llama", "qwen3": "qwen3"}[cfg["model_type"]]
    path = tmp / f"{quant}.gguf"
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_file_type(file_type)
    w.add_token_list([f"t{i}" for i in range(cfg["vocab_size"])])
    names = {"model.embed_tokens": "token_embd", "lm_head": "output", "model.norm": "output_norm",
             "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm"}
    data = 0
    for name, _, shape in decoder_tensors(cfg):
        stem, kind = name.rsplit(".", 1)
        if stem.startswith("model.layers."):
            _, _, i, rest = stem.split(".", 3)
            gname = f"blk.{i}.{names[rest]}.{kind}"
        else:
            gname = f"{names[stem]}.{kind}"
        n = 1
        for d in shape:
            n *= d
        if len(shape) == 2:
            nbytes = n // block * block_bytes
            w.add_tensor_info(gname, shape, np.float32, nbytes, raw_dtype=gguf.GGMLQuantizationType(ggml_type))
        else:
            nbytes = n * 4
            w.add_tensor_info(gname, shape, np.float32, nbytes)
        data += -(-nbytes // 32) * 32
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    header = path.read_bytes()
    return Blob(header, -(-len(header) // 32) * 32 + data)
