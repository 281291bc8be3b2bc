"""gpt-oss's MXFP4 experts as vLLM loads them, and the profile run's sampling peak, against the
start-up logs vLLM printed for them."""

import pytest

from vramtop.fit import mxfp4, vllm
from vramtop.fit.specs import from_catalog
from vramtop.fit.weights import weights_from_tensors

GIB = 1024**3


def spec(name):
    s = from_catalog(name)
    assert s is not None, name
    return s


def gpt_oss_20b_expert_headers():
    """The expert tensors of openai/gpt-oss-20b's model.safetensors headers: 32 experts, I = H =
    2880, FP4 in blocks of 32 (16 bytes) with one U8 scale each, bf16 biases."""
    for layer in range(24):
        stem = f"model.layers.{layer}.mlp.experts."
        yield stem + "gate_up_proj_blocks", "U8", [32, 5760, 90, 16]
        yield stem + "gate_up_proj_scales", "U8", [32, 5760, 90]
        yield stem + "gate_up_proj_bias", "BF16", [32, 5760]
        yield stem + "down_proj_blocks", "U8", [32, 2880, 90, 16]
        yield stem + "down_proj_scales", "U8", [32, 2880, 90]
        yield stem + "down_proj_bias", "BF16", [32, 2880]


def test_the_stored_layout_is_the_checkpoints_expert_tensors():
    checkpoint = weights_from_tensors(gpt_oss_20b_expert_headers())
    assert mxfp4.stored_bytes(mxfp4.Experts(32, 24, 2880, 2880)) == checkpoint.bytes


@pytest.mark.parametrize("model, gpu, release, reported", [
    # https://myoceane.fr/index.php/ai-vllm-a100-gemma-4/ : "Model loading took 13.72 GiB" (Marlin)
    ("openai/gpt-oss-20b", "NVIDIA A100-SXM4-80GB", "0.19.0", 13.72),
    # https://github.com/vllm-project/vllm/issues/33155 : "Using Triton backend", 64.38 GiB
    ("openai/gpt-oss-120b", "NVIDIA H100 80GB HBM3", "0.14.1", 64.38),
    # https://github.com/vllm-project/vllm/issues/23278 : Marlin weight-only FP4, 65.9651 GiB
    ("openai/gpt-oss-120b", "NVIDIA H100 80GB", "0.10.1", 65.9651),
])
def test_loaded_weights_match_what_vllm_logged(model, gpu, release, reported):
    backend = mxfp4.backend_for(gpu, vllm.parse_version(release))
    loaded = vllm.weights_per_rank(spec(model), None, 1, mxfp4_backend=backend) / GIB
    assert loaded == pytest.approx(reported, rel=0.01)
    assert vllm.weights_per_rank(spec(model), None, 1) / GIB < 0.97 * reported  # stored bytes fall short


def test_hopper_moves_from_marlin_to_triton_when_vllm_ships_triton_kernels():
    assert mxfp4.backend_for("NVIDIA H100 80GB HBM3", (0, 11, 0)) == "marlin"
    assert mxfp4.backend_for("NVIDIA H100 80GB HBM3", (0, 11, 1)) == "triton"
    assert mxfp4.backend_for("NVIDIA A100-SXM4-80GB", (0, 29, 1)) == "marlin"


def test_each_ranks_share_of_the_intermediate_size_is_padded():
    # TP 2: 1440 per rank, which Marlin rounds up to 1536, so two ranks hold more than TP 1 does
    s = spec("openai/gpt-oss-120b")
    whole = vllm.weights_per_rank(s, None, 1, mxfp4_backend="marlin")
    half = vllm.weights_per_rank(s, None, 2, mxfp4_backend="marlin")
    assert 2 * half > 1.03 * whole
    aligned = mxfp4.Experts(8, 4, 2048, 3072)  # already multiples of 128 and 256
    assert mxfp4.loaded_bytes(aligned, "marlin") == mxfp4.stored_bytes(aligned)


def _h100(release, util, batched, seqs):
    return vllm.VllmConfig(tp=1, util=util, max_model_len=131072, kv_cache_dtype="auto", max_num_seqs=seqs,
                           max_num_batched_tokens=batched, enforce_eager=False, weights_format=None,
                           dtype="bfloat16", version=vllm.parse_version(release), gpu_name="NVIDIA H100 80GB HBM3")


def test_gpt_oss_120b_at_util_095_cannot_hold_one_full_context_request():
    # https://github.com/vllm-project/vllm/issues/27508 (0.11.0): --gpu-memory-utilization 0.95
    # --max-num-batched-tokens 1024 -> "Available KV cache memory: 1.71 GiB", then the too-long error
    cfg = _h100("0.11.0", 0.95, 1024, 1024)
    r = vllm.rank_budget(spec("openai/gpt-oss-120b"), cfg, 0, 79.22 * GIB, 79.22 * GIB)
    assert r.kv_cache_bytes / GIB == pytest.approx(1.71, rel=0.1)
    assert vllm.failure(r, cfg).startswith("To serve at least one request with the model's max seq len (131072)")


def test_gpt_oss_120b_with_every_default_has_no_room_for_a_cache():
    # https://github.com/vllm-project/vllm/issues/23278 (0.10.1): "Available KV cache memory: -2.14 GiB"
    cfg = _h100("0.10.1", 0.9, 8192, 1024)
    r = vllm.rank_budget(spec("openai/gpt-oss-120b"), cfg, 0, 79.22 * GIB, 79.22 * GIB)
    assert r.kv_cache_bytes / GIB == pytest.approx(-2.14, rel=0.1)
    assert vllm.failure(r, cfg) == vllm.no_cache_error()


def test_the_sampling_peak_is_set_by_the_release_and_not_added_to_the_forward_pass():
    s = spec("openai/gpt-oss-120b")
    sort = vllm.activation_bytes(s, 1, 1024, 1024, "bfloat16", version=(0, 11, 0))
    triton = vllm.activation_bytes(s, 1, 1024, 1024, "bfloat16", version=(0, 19, 0))
    assert sort > 2.5 * triton
    # a long batch of few requests: the forward pass alone sets the peak
    forward_only = vllm.activation_bytes(s, 1, 32768, 1, "bfloat16", last_stage=False)
    assert vllm.activation_bytes(s, 1, 32768, 1, "bfloat16") == forward_only
