"""What each layer of a model keeps in vLLM's KV cache, read from the layer pattern of its config.json.

vLLM gives every layer a KV cache spec (``vllm/v1/kv_cache_interface.py``): full and sliding
window attention keep K/V per token (``FullAttentionSpec``, ``SlidingWindowSpec``); Mamba,
Mamba2, Gated DeltaNet and MiniMax linear attention layers keep one fixed state per request
(``MambaSpec``, shapes from ``MambaStateShapeCalculator`` in
``vllm/model_executor/layers/mamba/mamba_utils.py``); MLP-only layers keep nothing, and so do
Gemma 4's last ``num_kv_shared_layers`` layers, which read an earlier layer's cache
(``kv_sharing_target_layer_name`` in ``vllm/model_executor/models/gemma4.py``). A layer kind
this module does not know is named in ``LayerPattern.unknown``, never counted as another.
Pure: a config mapping in, counts out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from vramtop.yamlfile import one_line

FULL, SLIDING, STATE, NONE = "full", "sliding", "state", "none"
MAMBA1, MAMBA2, GDN, LINEAR = "mamba", "mamba2", "gated_delta_net", "linear_attention"


@dataclass(frozen=True)
class StateShape:
    """One state layer's per-request state, as vLLM allocates it. ``dims`` by ``kind``:

    mamba: (intermediate, state_size, conv_kernel); mamba2: (intermediate, n_groups, heads,
    head_dim, state_size, conv_kernel); gated_delta_net: (k_heads, v_heads, k_head_dim,
    v_head_dim, conv_kernel); linear_attention: (heads, head_dim).
    """

    kind: str
    dims: tuple[int, ...]
    ssm_bytes: int = 0  # bytes per element of the recurrent state when config.json sets it (fp32: 4)

    def elements(self, tp: int) -> tuple[int, int]:
        """(convolution, recurrent) state elements of one layer for one request on one TP
        rank (vLLM divides by TP)."""
        d = self.dims
        if self.kind == MAMBA1:
            inner, state, kernel = d
            return (kernel - 1) * (inner // tp), (inner // tp) * state
        if self.kind == MAMBA2:
            inner, groups, heads, head_dim, state, kernel = d
            if groups % tp:  # groups are replicated so that every head's group is on its rank
                groups += tp - groups
            return (kernel - 1) * ((inner + 2 * groups * state) // tp), (heads // tp) * head_dim * state
        if self.kind == GDN:
            k_heads, v_heads, k_dim, v_dim, kernel = d
            conv = k_dim * k_heads * 2 + v_dim * v_heads
            return (kernel - 1) * (conv // tp), (v_heads // tp) * k_dim * v_dim
        heads, head_dim = d  # linear attention (MiniMax lightning attention): one state tensor
        return (heads // tp) * head_dim * head_dim, 0

    def page_bytes(self, tp: int, element_bytes: int) -> int:
        """One layer's state for one request: the convolution state in the activation dtype,
        the recurrent state in ``ssm_bytes`` when config.json sets ``mamba_ssm_dtype``."""
        conv, ssm = self.elements(tp)
        return conv * element_bytes + ssm * (self.ssm_bytes or element_bytes)


@dataclass(frozen=True)
class LayerPattern:
    """How many layers of each kind; ``state`` describes the state layers (if any). ``no_kv``
    counts the ``shared`` layers (KV read from an earlier layer) with the MLP-only ones;
    ``shared_sliding`` of the shared ones are sliding-window layers."""

    sliding: int = 0
    state_layers: int = 0
    no_kv: int = 0
    state: StateShape | None = None
    unknown: tuple[str, ...] = ()
    shared: int = 0
    shared_sliding: int = 0


_KIND_OF_TYPE = {
    "full_attention": FULL, "attention": FULL, "global_attention": FULL, "global": FULL,
    "sliding_attention": SLIDING, "sliding_window": SLIDING, "local_attention": SLIDING,
    "local": SLIDING, "linear_attention": STATE, "mamba": STATE, "mamba2": STATE,
    "mlp": NONE, "moe": NONE,
}


def _int(c: Mapping[str, Any], *keys: str, default: int | None = None) -> int | None:
    for k in keys:
        v = c.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1 << 31:
            return v
    return default


def _state_shape(c: Mapping[str, Any], family: str) -> StateShape | None:
    """The state geometry a family writes in its config.json, or None when a field is missing."""
    hidden = _int(c, "hidden_size", "d_model") or 0
    if family == GDN:
        dims = (_int(c, "linear_num_key_heads"), _int(c, "linear_num_value_heads"),
                _int(c, "linear_key_head_dim"), _int(c, "linear_value_head_dim"),
                _int(c, "linear_conv_kernel_dim", default=4))
    elif family == "granite":  # GraniteMoeHybrid runs Mamba2 mixers
        inner = (_int(c, "mamba_expand", default=2) or 2) * hidden
        dims = (inner, _int(c, "mamba_n_groups", default=1), _int(c, "mamba_n_heads"),
                _int(c, "mamba_d_head"), _int(c, "mamba_d_state"), _int(c, "mamba_d_conv", default=4))
        family = MAMBA2
    elif family == "nemotron_h":
        heads, head_dim = _int(c, "mamba_num_heads"), _int(c, "mamba_head_dim")
        dims = (heads * head_dim if heads and head_dim else None, _int(c, "n_groups", default=1),
                heads, head_dim, _int(c, "ssm_state_size"), _int(c, "conv_kernel", default=4))
        family = MAMBA2
    elif family == MAMBA1:  # Jamba
        dims = ((_int(c, "mamba_expand", default=2) or 2) * hidden, _int(c, "mamba_d_state", default=16),
                _int(c, "mamba_d_conv", default=4))
    else:  # MiniMax-Text-01 lightning attention
        heads = _int(c, "num_attention_heads")
        dims = (heads, _int(c, "head_dim", default=(hidden // heads) if heads else None))
    if any(d is None or d <= 0 for d in dims):
        return None
    ssm = str(c.get("mamba_ssm_dtype") or c.get("mamba_ssm_cache_dtype") or "")[:20]
    ssm_bytes = {"float32": 4, "fp32": 4, "bfloat16": 2, "float16": 2}.get(ssm, 0)
    return StateShape(family, tuple(int(d) for d in dims), ssm_bytes)  # type: ignore[arg-type]


def layer_pattern(c: Mapping[str, Any], layers: int, sliding_window: bool) -> LayerPattern:
    """The layer kinds of a (text) config of ``layers`` layers. ``sliding_window``: whether the
    model has a window at all (Gemma's ``sliding_attention`` layers need one)."""
    kinds: list[str] = []
    unknown: list[str] = []
    family: str | None = None
    types = c.get("layer_types")
    pattern = c.get("hybrid_override_pattern")
    if isinstance(pattern, str):  # Nemotron-H: M mamba2, * attention, - MLP, E MoE
        family = "nemotron_h"
        for ch in pattern:
            kind = {"M": STATE, "*": FULL, "-": NONE, "E": NONE}.get(ch)
            if kind is None:
                unknown.append(f"layer type {one_line(repr(ch), 12)} in hybrid_override_pattern")
                kind = FULL
            kinds.append(kind)
    elif isinstance(types, list):
        family = "granite" if any(t == "mamba" for t in types) else GDN
        for t in types:
            kind = _KIND_OF_TYPE.get(str(t)[:40])
            if kind is None:
                unknown.append(f"layer type {one_line(repr(t), 40)}")
                kind = FULL
            if kind == SLIDING and not sliding_window:
                kind = FULL
            kinds.append(kind)
    elif _int(c, "full_attention_interval"):  # Qwen3-Next: every n-th layer is full attention
        family = GDN
        n = _int(c, "full_attention_interval") or 1
        kinds = [FULL if (i + 1) % n == 0 else STATE for i in range(layers)]
    elif _int(c, "attn_layer_period"):  # Jamba: attention where i % period == offset, else Mamba
        family = MAMBA1
        period = _int(c, "attn_layer_period") or 1
        offset = c.get("attn_layer_offset") if isinstance(c.get("attn_layer_offset"), int) else 0
        kinds = [FULL if i % period == offset else STATE for i in range(layers)]
    elif isinstance(c.get("attn_type_list"), list):  # MiniMax-Text-01: 1 softmax, 0 lightning
        family = LINEAR
        kinds = [FULL if a == 1 else STATE for a in c["attn_type_list"]]
    else:
        return LayerPattern()
    if len(kinds) != layers:
        unknown.append(f"a layer pattern of {len(kinds)} entries for {layers} layers")
        kinds = (kinds + [FULL] * layers)[:layers]
    shared = min(_int(c, "num_kv_shared_layers", default=0) or 0, layers)
    shared_kinds = kinds[layers - shared:] if shared else []
    if shared:  # gemma4.py: layers from num_hidden_layers - num_kv_shared_layers on keep no cache
        kinds = kinds[:layers - shared] + [NONE] * shared
    state_layers = kinds.count(STATE)
    state = _state_shape(c, family) if state_layers and family else None
    if state_layers and state is None:
        unknown.append(f"{state_layers} state layers whose state size config.json does not give")
    # state layers of unknown size are counted as full attention: an upper bound, and named
    return LayerPattern(sliding=kinds.count(SLIDING), state_layers=state_layers if state else 0,
                        no_kv=kinds.count(NONE), state=state, unknown=tuple(unknown),
                        shared=shared, shared_sliding=shared_kinds.count(SLIDING))
