r"""Hugging Face checkpoints as the spec's parameters: GPT-2 and LLaMA state dicts mapped onto
the decoder mapping of :mod:`spec.transformer`.

Pure Python over arrays: a state dict is any mapping from the checkpoint's key names to arrays
of one Array API namespace (NumPy arrays from safetensors' NumPy loader, detached torch
tensors, JAX arrays, …); the arrays are sliced and transposed, never copied into another
library nor modified. Each function returns ``(params, options)``: the decoder mapping and the
keyword options of :func:`~spec.decoder_forward` and :func:`~spec.generate` that make the
spec compute the model, so ``decoder_forward(tokens, params, **options)`` gives its logits.

A missing key, an unknown key or an array of the wrong shape is a ValueError naming the key
and the shape expected from the configuration values.

Sources: Radford et al. 2019 (GPT-2; Hugging Face ``GPT2LMHeadModel``), Touvron et al. 2023
(LLaMA; Hugging Face ``LlamaForCausalLM``); 002 §8 (the block).
"""

from __future__ import annotations

from collections.abc import Mapping

from . import _validate as check
from .attention import _flag
from .embeddings import _rope_scaling

__all__ = ["gpt2_params", "llama_params"]

#: GPT-2's causal-mask buffers, stored in old checkpoints next to the weights: not parameters
_GPT2_BUFFERS = (".attn.bias", ".attn.masked_bias")


def _count(value, name: str, minimum: int = 1) -> int:
    value = check.integer_option(value, name)
    if value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value}")
    return value


def _strip(state_dict, prefix: str) -> dict:
    """The keys without the model's `prefix` ("transformer." for GPT2LMHeadModel, "model." for
    LlamaForCausalLM), as the bare models and some checkpoints store them; lm_head as is."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping from key names to arrays, got "
                        f"{type(state_dict).__name__}")
    return {(k[len(prefix):] if isinstance(k, str) and k.startswith(prefix) else k): a
            for k, a in state_dict.items()}


class _Reader:
    """Takes each expected key once, checking its shape; what is left at the end is unknown."""

    def __init__(self, state: dict):
        self.state = dict(state)
        arrays = {str(k): a for k, a in self.state.items()}
        self.xp = check.namespace(**arrays) if arrays else None

    def take(self, key: str, shape: tuple):
        if key not in self.state:
            raise ValueError(f"state_dict is missing the key {key!r} (expected shape {shape})")
        a = self.state.pop(key)
        check.floating(self.xp, a, f"state_dict[{key!r}]")
        if tuple(a.shape) != tuple(shape):
            raise ValueError(f"state_dict[{key!r}] must have shape {tuple(shape)}, got "
                             f"{tuple(a.shape)}")
        return a

    def done(self) -> None:
        if self.state:
            raise ValueError(f"state_dict has keys this configuration does not use: "
                             f"{sorted(map(str, self.state))}")


def gpt2_params(state_dict, /, *, n_layer, n_embd, n_head, vocab_size, n_positions,
                n_inner=None, layer_norm_epsilon=1e-5, tie_word_embeddings=True):
    r"""A GPT-2 checkpoint (``GPT2LMHeadModel`` or ``GPT2Model`` keys) as the spec's decoder.

    .. math:: W_Q, W_K, W_V = \bigl(\texttt{c\_attn.weight}^\top\bigr)_{[0:d]},
              {}_{[d:2d]}, {}_{[2d:3d]}, \qquad W = \texttt{Conv1D.weight}^\top

    GPT-2's ``Conv1D`` stores its weight (in, out), the transpose of the spec's (out, in); the
    fused ``c_attn`` (d, 3d) and its bias (3d,) are split into queries, keys and values in
    that order. Per layer: ``ln_1`` → ln1, ``attn.c_attn`` → w_q, w_k, w_v, b_q, b_k, b_v,
    ``attn.c_proj`` → w_o, b_o, ``ln_2`` → ln2, ``mlp.c_fc`` → w1, b1, ``mlp.c_proj`` → w2,
    b2; ``wte`` → embedding, ``wpe`` → position_embedding, ``ln_f`` → ln_f. ``lm_head.weight``
    is the untied output layer when ``tie_word_embeddings=False``; when tied it may be present
    (the state dict of GPT2LMHeadModel lists the shared table twice) and is not used. The
    causal-mask buffers ``h.{i}.attn.bias`` and ``attn.masked_bias`` of old checkpoints are
    ignored. Keys may carry the ``transformer.`` prefix or not.

    The arguments are the config values of the same names (``n_inner`` None: 4d). Options:
    tanh GELU (``gelu_new``), learned positions, LayerNorm with ``layer_norm_epsilon``.
    Returns (params, options) for :func:`~spec.decoder_forward` and :func:`~spec.generate`.
    """
    layers, d = _count(n_layer, "n_layer", 0), _count(n_embd, "n_embd")
    heads, vocab = _count(n_head, "n_head"), _count(vocab_size, "vocab_size")
    positions = _count(n_positions, "n_positions")
    d_ff = 4 * d if n_inner is None else _count(n_inner, "n_inner")
    _flag(tie_word_embeddings, "tie_word_embeddings")
    state = {k: a for k, a in _strip(state_dict, "transformer.").items()
             if not (isinstance(k, str) and k.startswith("h.") and k.endswith(_GPT2_BUFFERS))}
    r = _Reader(state)
    xp = r.xp
    if xp is None:
        raise ValueError(f"state_dict is missing the key 'wte.weight' (expected shape "
                         f"{(vocab, d)})")

    def t(a):
        return xp.matrix_transpose(a)

    blocks = []
    for i in range(layers):
        h = f"h.{i}."
        qkv, qkv_b = t(r.take(h + "attn.c_attn.weight", (d, 3 * d))), r.take(
            h + "attn.c_attn.bias", (3 * d,))
        blocks.append({
            "ln1_gamma": r.take(h + "ln_1.weight", (d,)), "ln1_beta": r.take(h + "ln_1.bias", (d,)),
            "w_q": qkv[:d, :], "w_k": qkv[d:2 * d, :], "w_v": qkv[2 * d:, :],
            "b_q": qkv_b[:d], "b_k": qkv_b[d:2 * d], "b_v": qkv_b[2 * d:],
            "w_o": t(r.take(h + "attn.c_proj.weight", (d, d))),
            "b_o": r.take(h + "attn.c_proj.bias", (d,)),
            "ln2_gamma": r.take(h + "ln_2.weight", (d,)), "ln2_beta": r.take(h + "ln_2.bias", (d,)),
            "w1": t(r.take(h + "mlp.c_fc.weight", (d, d_ff))),
            "b1": r.take(h + "mlp.c_fc.bias", (d_ff,)),
            "w2": t(r.take(h + "mlp.c_proj.weight", (d_ff, d))),
            "b2": r.take(h + "mlp.c_proj.bias", (d,)),
        })
    params = {"embedding": r.take("wte.weight", (vocab, d)), "blocks": blocks,
              "position_embedding": r.take("wpe.weight", (positions, d)),
              "ln_f_gamma": r.take("ln_f.weight", (d,)), "ln_f_beta": r.take("ln_f.bias", (d,))}
    if not tie_word_embeddings:
        params["unembedding"] = r.take("lm_head.weight", (vocab, d))
    elif "lm_head.weight" in r.state:
        r.take("lm_head.weight", (vocab, d))  # the tied table listed a second time
    r.done()
    options = {"num_heads": heads, "activation": "gelu_tanh", "eps": float(layer_norm_epsilon),
               "norm": "layer_norm", "positional": "learned"}
    return params, options


def llama_params(state_dict, /, *, num_hidden_layers, hidden_size, num_attention_heads,
                 vocab_size, intermediate_size, num_key_value_heads=None, head_dim=None,
                 rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                 attention_bias=False, mlp_bias=False, rope_scaling=None):
    r"""A LLaMA checkpoint (``LlamaForCausalLM`` or ``LlamaModel`` keys) as the spec's decoder.

    .. math:: W_1 = \begin{pmatrix} W_\text{gate} \\ W_\text{up} \end{pmatrix}, \qquad
              \operatorname{MLP}(x) = W_\text{down}\bigl(\operatorname{SiLU}(W_\text{gate}x)
              \odot W_\text{up} x\bigr)

    Per layer: ``input_layernorm`` → ln1_gamma, ``self_attn.{q,k,v,o}_proj`` → w_q, w_k, w_v,
    w_o (already (out, in); with ``attention_bias`` their biases b_q, b_k, b_v, b_o),
    ``post_attention_layernorm`` → ln2_gamma, ``mlp.gate_proj`` and ``mlp.up_proj`` stacked
    into w1 (the spec's SwiGLU layout), ``mlp.down_proj`` → w2 (with ``mlp_bias``, b1 and b2);
    ``embed_tokens`` → embedding, ``norm`` → ln_f_gamma, ``lm_head`` → unembedding unless
    ``tie_word_embeddings`` (then ``lm_head.weight`` may be listed and is not used). Keys may
    carry the ``model.`` prefix or not.

    The arguments are the config values of the same names (``num_key_value_heads`` None:
    multi-head attention; ``head_dim`` None: hidden_size / num_attention_heads; ``rope_theta``
    is ``config.rope_parameters["rope_theta"]`` in transformers ≥ 5; ``rope_scaling`` is the
    config's ``rope_scaling``, or its whole ``rope_parameters`` in transformers ≥ 5: rope_type
    "default", "linear" or "llama3", as :func:`~spec.rope` takes it). Options: RMSNorm with
    ``rms_norm_eps``, RoPE in the rotate-half layout with base ``rope_theta`` and its scaling,
    SwiGLU, grouped-query attention.
    Returns (params, options) for :func:`~spec.decoder_forward` and :func:`~spec.generate`.
    """
    layers, d = _count(num_hidden_layers, "num_hidden_layers", 0), _count(hidden_size,
                                                                           "hidden_size")
    heads, vocab = _count(num_attention_heads, "num_attention_heads"), _count(vocab_size,
                                                                              "vocab_size")
    kv = heads if num_key_value_heads is None else _count(num_key_value_heads,
                                                          "num_key_value_heads")
    d_ff = _count(intermediate_size, "intermediate_size")
    if head_dim is None:
        if d % heads:
            raise ValueError(f"hidden_size = {d} is not divisible by num_attention_heads = "
                             f"{heads}; give head_dim")
        head_dim = d // heads
    d_head = _count(head_dim, "head_dim")
    if heads % kv:
        raise ValueError(f"num_attention_heads = {heads} must be a multiple of "
                         f"num_key_value_heads = {kv}")
    base = check.positive_number(rope_theta, "rope_theta")
    scaling = _rope_scaling(rope_scaling, base, "rope_scaling", "rope_theta")
    for flag in ("tie_word_embeddings", "attention_bias", "mlp_bias"):
        _flag(locals()[flag], flag)
    r = _Reader(_strip(state_dict, "model."))
    xp = r.xp
    if xp is None:
        raise ValueError(f"state_dict is missing the key 'embed_tokens.weight' (expected shape "
                         f"{(vocab, d)})")
    blocks = []
    for i in range(layers):
        h = f"layers.{i}."
        a, m = h + "self_attn.", h + "mlp."
        block = {
            "ln1_gamma": r.take(h + "input_layernorm.weight", (d,)),
            "w_q": r.take(a + "q_proj.weight", (heads * d_head, d)),
            "w_k": r.take(a + "k_proj.weight", (kv * d_head, d)),
            "w_v": r.take(a + "v_proj.weight", (kv * d_head, d)),
            "w_o": r.take(a + "o_proj.weight", (d, heads * d_head)),
            "ln2_gamma": r.take(h + "post_attention_layernorm.weight", (d,)),
            "w1": xp.concat([r.take(m + "gate_proj.weight", (d_ff, d)),
                             r.take(m + "up_proj.weight", (d_ff, d))], axis=0),
            "w2": r.take(m + "down_proj.weight", (d, d_ff)),
        }
        if attention_bias:
            for key, name, n in (("b_q", "q_proj", heads * d_head), ("b_k", "k_proj",
                                 kv * d_head), ("b_v", "v_proj", kv * d_head),
                                 ("b_o", "o_proj", d)):
                block[key] = r.take(a + name + ".bias", (n,))
        if mlp_bias:
            block["b1"] = xp.concat([r.take(m + "gate_proj.bias", (d_ff,)),
                                     r.take(m + "up_proj.bias", (d_ff,))], axis=0)
            block["b2"] = r.take(m + "down_proj.bias", (d,))
        blocks.append(block)
    params = {"embedding": r.take("embed_tokens.weight", (vocab, d)), "blocks": blocks,
              "ln_f_gamma": r.take("norm.weight", (d,))}
    if not tie_word_embeddings:
        params["unembedding"] = r.take("lm_head.weight", (vocab, d))
    elif "lm_head.weight" in r.state:
        r.take("lm_head.weight", (vocab, d))  # the tied table listed a second time
    r.done()
    options = {"num_heads": heads, "num_kv_heads": kv, "activation": "swiglu",
               "eps": float(rms_norm_eps), "norm": "rms_norm", "positional": "rope",
               "rope_base": base, "rope_layout": "half",
               "rope_scaling": None if scaling is None else dict(rope_scaling)}
    return params, options
