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


# Gemma3TextConfig's defaults, for the keys Gemma 3's multimodal config.json files leave out
# (transformers models/gemma3/configuration_gemma3.py).
GEMMA3_TEXT_DEFAULTS = {"vocab_size": 262208, "num_attention_heads": 8, "num_key_value_heads": 4,
                        "head_dim": 256}


def gemma3_text_tensors(cfg: dict, prefix: str) -> list[tuple[str, str, list[int]]]:
    """``Gemma3ForCausalLM`` (models/gemma3/modeling_gemma3.py): q/k norms, four norms a layer,
    the embedding tied to the LM head."""
    c = {**GEMMA3_TEXT_DEFAULTS, **cfg}
    hidden, heads, kv, hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    inter = c["intermediate_size"]
    out = [(prefix + "embed_tokens.weight", "BF16", [c["vocab_size"], hidden])]
    for i in range(c["num_hidden_layers"]):
        p = f"{prefix}layers.{i}."
        out += [(p + f"{n}.weight", "BF16", [hidden]) for n in (
            "input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
            "post_feedforward_layernorm")]
        out += [(p + "self_attn.q_proj.weight", "BF16", [heads * hd, hidden]),
                (p + "self_attn.k_proj.weight", "BF16", [kv * hd, hidden]),
                (p + "self_attn.v_proj.weight", "BF16", [kv * hd, hidden]),
                (p + "self_attn.o_proj.weight", "BF16", [hidden, heads * hd]),
                (p + "self_attn.q_norm.weight", "BF16", [hd]), (p + "self_attn.k_norm.weight", "BF16", [hd]),
                (p + "mlp.gate_proj.weight", "BF16", [inter, hidden]),
                (p + "mlp.up_proj.weight", "BF16", [inter, hidden]),
                (p + "mlp.down_proj.weight", "BF16", [hidden, inter])]
    out.append((prefix + "norm.weight", "BF16", [hidden]))
    return out


def gemma3_tensors(cfg: dict) -> list[tuple[str, str, list[int]]]:
    """``Gemma3ForConditionalGeneration`` as google/medgemma-27b-it's index names it: the language
    model under ``language_model.model.``, the SigLIP tower (models/siglip/modeling_siglip.py:
    a patch convolution, learned positions, pre-norm layers with biased projections) under
    ``vision_tower.vision_model.``, and the projector into the text width."""
    v = cfg["vision_config"]
    vh, vi = v["hidden_size"], v["intermediate_size"]
    patches = (v["image_size"] // v["patch_size"]) ** 2
    vp = "vision_tower.vision_model."
    out = gemma3_text_tensors(cfg["text_config"], "language_model.model.")
    out += [(vp + "embeddings.patch_embedding.weight", "BF16", [vh, 3, v["patch_size"], v["patch_size"]]),
            (vp + "embeddings.patch_embedding.bias", "BF16", [vh]),
            (vp + "embeddings.position_embedding.weight", "BF16", [patches, vh])]
    for i in range(v["num_hidden_layers"]):
        p = f"{vp}encoder.layers.{i}."
        for norm in ("layer_norm1", "layer_norm2"):
            out += [(p + f"{norm}.weight", "BF16", [vh]), (p + f"{norm}.bias", "BF16", [vh])]
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out += [(p + f"self_attn.{proj}.weight", "BF16", [vh, vh]), (p + f"self_attn.{proj}.bias", "BF16", [vh])]
        out += [(p + "mlp.fc1.weight", "BF16", [vi, vh]), (p + "mlp.fc1.bias", "BF16", [vi]),
                (p + "mlp.fc2.weight", "BF16", [vh, vi]), (p + "mlp.fc2.bias", "BF16", [vh])]
    out += [(vp + "post_layernorm.weight", "BF16", [vh]), (vp + "post_layernorm.bias", "BF16", [vh]),
            ("multi_modal_projector.mm_input_projection_weight", "BF16", [vh, cfg["text_config"]["hidden_size"]]),
            ("multi_modal_projector.mm_soft_emb_norm.weight", "BF16", [vh])]
    return out


def phi3_tensors(cfg: dict) -> list[tuple[str, str, list[int]]]:
    """``Phi3ForCausalLM`` (models/phi3/modeling_phi3.py): one fused ``qkv_proj`` and one fused
    ``gate_up_proj`` a layer."""
    hidden, heads, kv, layers = (cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"],
                                 cfg["num_hidden_layers"])
    hd, inter, vocab = hidden // heads, cfg["intermediate_size"], cfg["vocab_size"]
    out = [("model.embed_tokens.weight", "BF16", [vocab, hidden])]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", "BF16", [hidden]),
                (p + "post_attention_layernorm.weight", "BF16", [hidden]),
                (p + "self_attn.qkv_proj.weight", "BF16", [(heads + 2 * kv) * hd, hidden]),
                (p + "self_attn.o_proj.weight", "BF16", [hidden, heads * hd]),
                (p + "mlp.gate_up_proj.weight", "BF16", [2 * inter, hidden]),
                (p + "mlp.down_proj.weight", "BF16", [hidden, inter])]
    return out + [("model.norm.weight", "BF16", [hidden]), ("lm_head.weight", "BF16", [vocab, hidden])]


def _fp8(name: str, shape: list[int], block: list[int]) -> list[tuple[str, str, list[int]]]:
    """An FP8 linear weight and its block scales (``weight_scale_inv``, one F32 per block)."""
    return [(name + ".weight", "F8_E4M3", shape),
            (name + ".weight_scale_inv", "F32", [-(-shape[0] // block[0]), -(-shape[1] // block[1])])]


def deepseek_v3_tensors(cfg: dict) -> list[tuple[str, str, list[int]]]:
    """``DeepseekV3ForCausalLM`` as published (the repository's modeling_deepseek.py): MLA
    attention (q_a/q_b low-rank query, kv_a_proj_with_mqa, kv_b_proj), dense MLPs in the first
    ``first_k_dense_replace`` layers, then a sigmoid router with its correction bias, routed and
    shared experts; every linear layer in FP8 with 128x128 block scales, norms, router, embedding
    and LM head in BF16. The multi-token-prediction layer follows as layer ``num_hidden_layers``
    (its own embedding, enorm/hnorm, eh_proj and shared head), which vLLM skips
    (vllm/model_executor/models/deepseek_v2.py: get_spec_layer_idx_from_weight_name)."""
    h, heads, layers = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    ql, kvl, rope = cfg["q_lora_rank"], cfg["kv_lora_rank"], cfg["qk_rope_head_dim"]
    nope, vd = cfg["qk_nope_head_dim"], cfg["v_head_dim"]
    inter, moe, experts = cfg["intermediate_size"], cfg["moe_intermediate_size"], cfg["n_routed_experts"]
    block = cfg["quantization_config"]["weight_block_size"]
    vocab = cfg["vocab_size"]

    def layer(i: int) -> list[tuple[str, str, list[int]]]:
        p = f"model.layers.{i}."
        out = [(p + "input_layernorm.weight", "BF16", [h]), (p + "post_attention_layernorm.weight", "BF16", [h]),
               (p + "self_attn.q_a_layernorm.weight", "BF16", [ql]),
               (p + "self_attn.kv_a_layernorm.weight", "BF16", [kvl])]
        out += _fp8(p + "self_attn.q_a_proj", [ql, h], block)
        out += _fp8(p + "self_attn.q_b_proj", [heads * (nope + rope), ql], block)
        out += _fp8(p + "self_attn.kv_a_proj_with_mqa", [kvl + rope, h], block)
        out += _fp8(p + "self_attn.kv_b_proj", [heads * (nope + vd), kvl], block)
        out += _fp8(p + "self_attn.o_proj", [h, heads * vd], block)
        if i < cfg["first_k_dense_replace"]:
            mlps = [(p + "mlp.", inter)]
        else:
            out += [(p + "mlp.gate.weight", "BF16", [experts, h]),
                    (p + "mlp.gate.e_score_correction_bias", "F32", [experts])]
            mlps = [(p + f"mlp.experts.{e}.", moe) for e in range(experts)]
            mlps.append((p + "mlp.shared_experts.", moe * cfg["n_shared_experts"]))
        for q, width in mlps:
            out += _fp8(q + "gate_proj", [width, h], block) + _fp8(q + "up_proj", [width, h], block)
            out += _fp8(q + "down_proj", [h, width], block)
        return out

    out = [("model.embed_tokens.weight", "BF16", [vocab, h])]
    for i in range(layers):
        out += layer(i)
    out += [("model.norm.weight", "BF16", [h]), ("lm_head.weight", "BF16", [vocab, h])]
    for k in range(cfg.get("num_nextn_predict_layers", 0)):
        p = f"model.layers.{layers + k}."
        out += layer(layers + k)
        out += [(p + "embed_tokens.weight", "BF16", [vocab, h]), (p + "enorm.weight", "BF16", [h]),
                (p + "hnorm.weight", "BF16", [h]), (p + "eh_proj.weight", "BF16", [h, 2 * h]),
                (p + "shared_head.norm.weight", "BF16", [h]), (p + "shared_head.head.weight", "BF16", [vocab, h])]
    return out


def gpt_oss_tensors(cfg: dict) -> list[tuple[str, str, list[int]]]:
    """``GptOssForCausalLM`` as published (models/gpt_oss/modeling_gpt_oss.py and its MXFP4
    checkpoint): biased attention projections and per-head sinks, a biased router, and the
    experts' fused gate_up and down weights as MXFP4 ``*_blocks`` (U8, two 4-bit values a byte,
    32 values a block) with one U8 exponent a block in ``*_scales``; everything else BF16."""
    h, heads, kv, hd = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    e, inter, vocab = cfg["num_local_experts"], cfg["intermediate_size"], cfg["vocab_size"]
    out = [("model.embed_tokens.weight", "BF16", [vocab, h])]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", "BF16", [h]), (p + "post_attention_layernorm.weight", "BF16", [h])]
        for proj, rows in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
            out += [(p + f"self_attn.{proj}.weight", "BF16", [rows, h]), (p + f"self_attn.{proj}.bias", "BF16", [rows])]
        out += [(p + "self_attn.o_proj.weight", "BF16", [h, heads * hd]), (p + "self_attn.o_proj.bias", "BF16", [h]),
                (p + "self_attn.sinks", "BF16", [heads]),
                (p + "mlp.router.weight", "BF16", [e, h]), (p + "mlp.router.bias", "BF16", [e])]
        for proj, rows, cols in (("gate_up_proj", 2 * inter, h), ("down_proj", h, inter)):
            out += [(p + f"mlp.experts.{proj}_blocks", "U8", [e, rows, cols // 32, 16]),
                    (p + f"mlp.experts.{proj}_scales", "U8", [e, rows, cols // 32]),
                    (p + f"mlp.experts.{proj}_bias", "BF16", [e, rows])]
    return out + [("model.norm.weight", "BF16", [h]), ("lm_head.weight", "BF16", [vocab, h])]


def qwen2_5_vl_tensors(cfg: dict) -> list[tuple[str, str, list[int]]]:
    """``Qwen2_5_VLForConditionalGeneration`` as published: the Qwen2 language model under
    ``model.``, the vision tower under ``visual.`` (models/qwen2_5_vl/modeling_qwen2_5_vl.py: a
    bias-free patch convolution over two frames, RMSNorm blocks with fused qkv and a gated MLP,
    a merger of spatial_merge_size² patches into the text width)."""
    v = cfg["vision_config"]
    h, inter, out = v["hidden_size"], v["intermediate_size"], v["out_hidden_size"]
    wide = h * v["spatial_merge_size"] ** 2
    tensors = decoder_tensors({**cfg, "model_type": "qwen2"})
    tensors.append(("visual.patch_embed.proj.weight", "BF16",
                    [h, v["in_chans"], v["temporal_patch_size"], v["patch_size"], v["patch_size"]]))
    for i in range(v["depth"]):
        p = f"visual.blocks.{i}."
        tensors += [(p + "norm1.weight", "BF16", [h]), (p + "norm2.weight", "BF16", [h]),
                    (p + "attn.qkv.weight", "BF16", [3 * h, h]), (p + "attn.qkv.bias", "BF16", [3 * h]),
                    (p + "attn.proj.weight", "BF16", [h, h]), (p + "attn.proj.bias", "BF16", [h]),
                    (p + "mlp.gate_proj.weight", "BF16", [inter, h]), (p + "mlp.gate_proj.bias", "BF16", [inter]),
                    (p + "mlp.up_proj.weight", "BF16", [inter, h]), (p + "mlp.up_proj.bias", "BF16", [inter]),
                    (p + "mlp.down_proj.weight", "BF16", [h, inter]), (p + "mlp.down_proj.bias", "BF16", [h])]
    return tensors + [("visual.merger.ln_q.weight", "BF16", [h]),
                      ("visual.merger.mlp.0.weight", "BF16", [wide, wide]), ("visual.merger.mlp.0.bias", "BF16", [wide]),
                      ("visual.merger.mlp.2.weight", "BF16", [out, wide]), ("visual.merger.mlp.2.bias", "BF16", [out])]


def tensors_of(cfg: dict) -> list[tuple[str, str, list[int]]]:
    """The tensors of the checkpoint published with ``cfg`` (by its model_type)."""
    kind = cfg["model_type"]
    if kind == "gemma3":
        return gemma3_tensors(cfg)
    if kind == "gemma3_text":
        return gemma3_text_tensors(cfg, "model.")
    if kind == "phi3":
        return phi3_tensors(cfg)
    if kind == "deepseek_v3":
        return deepseek_v3_tensors(cfg)
    if kind == "gpt_oss":
        return gpt_oss_tensors(cfg)
    if kind == "qwen2_5_vl":
        return qwen2_5_vl_tensors(cfg)
    return decoder_tensors(cfg)


def sharded(tensors: list, shards: int, first: int = 1) -> dict[str, Blob]:
    """Shards named as transformers names them (gpt-oss counts from 0), and the index whose
    weight_map lists them."""
    files: dict[str, Blob] = {}
    weight_map: dict[str, str] = {}
    per = -(-len(tensors) // shards)
    total = 0
    for k in range(shards):
        name = f"model-{k + first:05d}-of-{shards + first - 1:05d}.safetensors"
        part = tensors[k * per:(k + 1) * per]
        files[name] = safetensors_blob(part)
        total += files[name].size
        weight_map.update({t[0]: name for t in part})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    files["model.safetensors.index.json"] = Blob.of(json.dumps(index).encode())
    return files


# The number of safetensors files each repository publishes (one: a single model.safetensors).
SHARDS = {
    "google/medgemma-27b-it": 12, "google/medgemma-4b-it": 2, "google/gemma-3-1b-it": 1,
    "google/gemma-3-4b-it": 2, "google/gemma-3-12b-it": 5, "google/gemma-3-27b-it": 12,
    "meta-llama/Llama-3.1-8B-Instruct": 4, "meta-llama/Llama-3.1-70B-Instruct": 30,
    "meta-llama/Llama-3.2-1B-Instruct": 1, "meta-llama/Llama-3.2-3B-Instruct": 2,
    "meta-llama/Llama-3.3-70B-Instruct": 30, "Qwen/Qwen2.5-7B-Instruct": 4, "Qwen/Qwen2.5-14B-Instruct": 8,
    "Qwen/Qwen2.5-32B-Instruct": 17, "Qwen/Qwen2.5-72B-Instruct": 37, "Qwen/Qwen3-8B": 5, "Qwen/Qwen3-14B": 8,
    "Qwen/Qwen3-32B": 17, "Qwen/Qwen3-30B-A3B": 16, "mistralai/Mistral-7B-Instruct-v0.3": 3,
    "mistralai/Mistral-Small-24B-Instruct-2501": 10, "mistralai/Mixtral-8x7B-Instruct-v0.1": 19,
    "microsoft/phi-4": 6, "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": 2,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B": 8, "deepseek-ai/DeepSeek-V3": 163,
    "openai/gpt-oss-20b": 3, "openai/gpt-oss-120b": 15,
}


def repository(repo_id: str, **kwargs) -> Repo:
    """The repository as the Hub lays it out: config.json, the safetensors files (one, or shards
    and their index), and the copies beside them that vLLM does not load."""
    cfg = config(repo_id)
    tensors = tensors_of(cfg)
    files = {"config.json": Blob.of(json.dumps(cfg, indent=2).encode()),
             "generation_config.json": Blob.of(b'{"do_sample": true}'),
             "tokenizer.json": Blob(b"{", 9_000_000)}
    shards = SHARDS[repo_id]
    if shards == 1:
        files["model.safetensors"] = safetensors_blob(tensors)
    else:
        files.update(sharded(tensors, shards, first=0 if repo_id.startswith("openai/") else 1))
    if repo_id.startswith("meta-llama/"):  # Meta's own checkpoint format beside the HF one
        files["original/consolidated.00.pth"] = Blob(b"PK", 2_000_000_000)
        files["original/params.json"] = Blob.of(b"{}")
    if repo_id.startswith("mistralai/"):  # Mistral's format: the same weights once more
        files["consolidated.safetensors"] = safetensors_blob(
            [(n.replace("model.", ""), d, s) for n, d, s in tensors])
    if repo_id.startswith("openai/"):  # the original MXFP4 checkpoint once more
        files["original/model.safetensors"] = safetensors_blob(tensors[:4])
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
