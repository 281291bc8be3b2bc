"""An MXFP4 MoE checkpoint's experts (gpt-oss) as vLLM lays them out in GPU memory, per backend.

The checkpoint stores each expert's fused gate/up projection (2I × H) and down projection (H × I)
as packed FP4 (two weights a byte) with one E8M0 scale byte per 32 weights and a bf16 bias per
output row. ``Mxfp4MoEMethod.create_weights`` (``vllm/model_executor/layers/quantization/
mxfp4.py``) allocates these tensors with I (this rank's share) and H rounded up for the kernel
the GPU gets, and ``process_weights_after_loading`` may hold more:

  marlin      I to a multiple of 128, H of 256 (the Marlin MoE kernel needs n % 256, k % 128).
              Ampere and Ada, consumer Blackwell (SM 12.x: no triton_kernels there), and Hopper
              before 0.11.1, whose wheel did not bring ``triton_kernels`` (vLLM pull 27370 made
              it a dependency). Also the fallback when the GPU is not known.
  triton      I to a multiple of 64, H as is; after loading the biases become fp32 and the
              scales are swizzled into copies (``_swizzle_mxfp4``, ``quantization/utils/
              mxfp4_utils.py``) while the loaded scale parameters stay registered; Hopper's
              scale layout (``HopperMXScaleLayout`` in triton_kernels) pads the rows to a
              multiple of 2·8·2·num_warps = 256 (8 warps). Hopper from 0.11.1.
  flashinfer  I and H to multiples of 256 (``SM100_FI_MXFP4_*``): datacenter Blackwell
              (B200, GB200, B300), where FlashInfer is installed with vLLM.
  rocm        I and H to multiples of 128 (256 on gfx950, MI350/MI355), then the triton path's
              fp32 biases and unpadded scale copies (strided layout on ROCm). The later
              backend oracle (``vllm/model_executor/layers/fused_moe/oracle/mxfp4.py``) rounds
              both to 256 on every ROCm GPU; from which release is not known here.

The backends vLLM picks only when asked by environment variable (FlashInfer on Hopper, CUTLASS
on Blackwell) are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

FP4_PER_BYTE = 2
BLOCK = 32  # weights per E8M0 scale
BIAS_BYTES = 2  # bf16 in the checkpoint
HOPPER_SCALE_ROWS = 256  # 2 * num_warps * 2 * 8 with num_warps = 8
TRITON_ON_HOPPER_FROM = (0, 11, 1)

# backend: (multiple I is rounded to, multiple H is rounded to)
PADDING = {"marlin": (128, 256), "triton": (64, 1), "flashinfer": (256, 256), "rocm": (128, 128),
           "rocm-gfx950": (256, 256)}


@dataclass(frozen=True)
class Experts:
    """One rank's routed experts: ``experts`` of them in each of ``layers`` MoE layers, with
    ``intermediate`` (this rank's share of I) and ``hidden`` (H)."""

    experts: int
    layers: int
    intermediate: int
    hidden: int


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def backend_for(gpu_name: str, version: tuple[int, int, int]) -> str:
    """The MXFP4 MoE backend ``get_mxfp4_backend`` gives a GPU, told apart by its name."""
    name = gpu_name.upper()
    if any(w in name for w in ("AMD", "INSTINCT", "RADEON", "MI2", "MI3")):
        return "rocm-gfx950" if any(w in name for w in ("MI350", "MI355")) else "rocm"
    if any(w in name for w in ("B100", "B200", "B300", "GB200", "GB300")):
        return "flashinfer"
    if any(w in name for w in ("H100", "H200", "H800", "H20", "GH200")):
        return "triton" if version >= TRITON_ON_HOPPER_FROM else "marlin"
    return "marlin"


def _tensor_bytes(e: Experts, intermediate: int, hidden: int) -> tuple[int, int, int]:
    """Weights, scales and biases of one expert in one layer: gate/up (2I × H) and down (H × I)."""
    weights = 2 * intermediate * hidden // FP4_PER_BYTE + hidden * intermediate // FP4_PER_BYTE
    scales = 2 * intermediate * (hidden // BLOCK) + hidden * (intermediate // BLOCK)
    biases = (2 * intermediate + hidden) * BIAS_BYTES
    return weights, scales, biases


def stored_bytes(e: Experts) -> int:
    """The experts' bytes as the checkpoint stores them."""
    return sum(_tensor_bytes(e, e.intermediate, e.hidden)) * e.experts * e.layers


def loaded_bytes(e: Experts, backend: str) -> int:
    """The experts' bytes on the GPU once ``backend`` has loaded them."""
    pad_i, pad_h = PADDING[backend]
    i, h = _round_up(e.intermediate, pad_i), _round_up(e.hidden, pad_h)
    weights, scales, biases = _tensor_bytes(e, i, h)
    per_expert = weights + scales + biases
    if backend == "triton" or backend.startswith("rocm"):
        per_expert += biases  # fp32 biases replace the bf16 ones
        if backend == "triton":  # swizzled copy of the scales, rows padded
            per_expert += _round_up(2 * i, HOPPER_SCALE_ROWS) * (h // BLOCK) \
                + _round_up(h, HOPPER_SCALE_ROWS) * (i // BLOCK)
        else:
            per_expert += scales
    return per_expert * e.experts * e.layers
