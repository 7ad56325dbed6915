"""§10 Transformer against the real code: GPT-2 and LLaMA from Hugging Face `transformers`
run through the spec's composed model (issue 13).

`transformers` is a test-only oracle (pyproject's `hf` extra): each test skips without it.
Every model is built here from a tiny configuration (2 layers, d = 32, 4 heads, vocabulary 50)
with random weights drawn after `torch.manual_seed`: nothing is ever downloaded. Its state
dict is mapped by `spec.checkpoints` (moved to the backend under test first, so the mapping
runs in that namespace) and the spec's `decoder_forward` / `generate` are compared with the
model's logits and `generate(do_sample=False)`.

Tolerances:
- GPT-2 in float64: HF's GPT-2 computes everything in the model's dtype, so both sides are
  float64 evaluations of the same formula in slightly different orders (HF divides the
  scores by √d_head, the spec multiplies by 1/√d_head; its softmax and LayerNorm sum in
  other orders). For these 2-layer models that differs by ~1e-15 relative; 1e-10 relative to
  the largest |logit| leaves room for the chain's growth and still fails on any wrong term.
- LLaMA: even after `.double()`, HF computes RMSNorm (`hidden_states.to(torch.float32)`),
  the RoPE inverse frequencies and angles (`inv_freq` built in float32, cos/sin under
  autocast-disabled float32) and the eager attention's softmax (`dtype=torch.float32`) in
  float32, then casts back. Its logits are therefore float32-accurate only: each of those
  steps rounds to float32's unit u = 2⁻²⁴ ≈ 6e-8, about ten such roundings per layer feed
  the residual stream, and weights of normal(0, 0.2) at d = 32 amplify them by O(1) per
  layer. We compare at 2e-5 relative to the largest |logit| (≈ 300 u): measured errors are
  a few 1e-7 (see the report of issue 13), and a wrong layout (interleaved RoPE, unrepeated
  K/V heads, a wrong θ base) is off by 1e-2 or more.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

import spec
from spec.checkpoints import gpt2_params, llama_params

VOCAB, D, LAYERS, HEADS, SEQ = 50, 32, 2, 4, 8
GPT2_RTOL = 1e-10  # float64 both sides (module docstring)
LLAMA_RTOL = 2e-5  # HF's float32 islands inside the float64 model (module docstring)


@pytest.fixture(scope="module")
def hf():
    """`transformers` and `torch`, or a skip naming the missing test-only dependency."""
    transformers = pytest.importorskip("transformers", reason="transformers is the test-only "
                                       "oracle of issue 13 (pip install '.[hf]')")
    torch = pytest.importorskip("torch")
    transformers.logging.set_verbosity_error()
    return transformers, torch


def _randomise(torch, model, seed: int):
    """Every parameter redrawn (HF's init leaves biases 0 and norms 1, which would hide a bias
    or a gain mapped to the wrong place): weights normal(0, 0.2), norm gains 1 + normal(0, 0.1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            is_gain = ("ln_" in name or "norm" in name) and name.endswith("weight")
            p.copy_(1 + 0.1 * noise if is_gain else 0.2 * noise)
    return model.double().eval()


def _gpt2(hf, tied: bool):
    transformers, torch = hf
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=32, n_embd=D, n_layer=LAYERS, n_head=HEADS,
        tie_word_embeddings=tied, bos_token_id=0, eos_token_id=0, pad_token_id=0,
        attn_implementation="eager")
    model = _randomise(torch, transformers.GPT2LMHeadModel(config), 1 + tied)
    return config, model


#: Llama 3.1's RoPE scaling, with an original context that puts d_head = 8's four pairs at base
#: 10000 (wavelengths 6.3, 63, 628, 6283) in all three bands: kept (< 256/8), blended, and
#: divided by the factor (> 256/1)
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 8.0, "original_max_position_embeddings": 256}


def _llama(hf, tied: bool, kv_heads: int = 2, theta: float = 500000.0, scaling=None,
           attention="eager"):
    transformers, torch = hf
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=D, intermediate_size=64, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=kv_heads, max_position_embeddings=1024,
        rope_parameters={"rope_type": "default", "rope_theta": theta, **(scaling or {})},
        tie_word_embeddings=tied, bos_token_id=0, eos_token_id=0, pad_token_id=0,
        attn_implementation=attention)
    model = _randomise(torch, transformers.LlamaForCausalLM(config), 3 + tied + 10 * kv_heads)
    return config, model


def _on_backend(backend, model) -> dict:
    """The model's state dict as float64 arrays of the backend under test."""
    if "float64" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float64")
    return {k: backend.asarray(v.detach().cpu().numpy(), "float64")
            for k, v in model.state_dict().items()}


def _gpt2_spec(backend, config, model):
    return gpt2_params(_on_backend(backend, model), n_layer=config.n_layer,
                       n_embd=config.n_embd, n_head=config.n_head,
                       vocab_size=config.vocab_size, n_positions=config.n_positions,
                       n_inner=config.n_inner, layer_norm_epsilon=config.layer_norm_epsilon,
                       tie_word_embeddings=config.tie_word_embeddings)


def _llama_spec(backend, config, model):
    return llama_params(_on_backend(backend, model),
                        num_hidden_layers=config.num_hidden_layers,
                        hidden_size=config.hidden_size,
                        num_attention_heads=config.num_attention_heads,
                        num_key_value_heads=config.num_key_value_heads,
                        vocab_size=config.vocab_size,
                        intermediate_size=config.intermediate_size,
                        head_dim=config.head_dim, rms_norm_eps=config.rms_norm_eps,
                        rope_theta=config.rope_parameters["rope_theta"],
                        rope_scaling=config.rope_parameters,
                        tie_word_embeddings=config.tie_word_embeddings,
                        attention_bias=config.attention_bias, mlp_bias=config.mlp_bias)


def _tokens(seed: int = 0, shape=(2, SEQ)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, shape).astype(np.int64)


def _hf_logits(hf, model, tokens: np.ndarray, mask=None, positions=None) -> np.ndarray:
    _, torch = hf
    extra = {} if mask is None else {"attention_mask": torch.from_numpy(mask.astype(np.int64)),
                                     "position_ids": torch.from_numpy(positions)}
    with torch.no_grad():
        return model(torch.from_numpy(tokens), **extra).logits.numpy()


def _padded_model(hf, family: str):
    """The models of the padded tests. LLaMA runs HF's "sdpa" attention there: its "eager"
    attention, in a float64 model, adds torch.finfo(float64).min to the masked scores and then
    takes the softmax in float32, where that is −∞, so a pad query (which sees only pads)
    gets a row of −∞ and NaN weights; its NaN output then reaches the real tokens of the next
    layer through the values (0·NaN), and HF's own logits are NaN there (measured with
    transformers 5.25: eager float64 NaN, eager float32, sdpa float64 and sdpa float32
    finite; compare huggingface/transformers#25311 for float16)."""
    if family == "gpt2":
        return _gpt2(hf, True)
    return _llama(hf, False, attention="sdpa")


def _left_padded(seed: int):
    """A batch of three prompts of 8, 5 and 2 real tokens, left-padded with id 0 to 8: tokens,
    the attention mask (True = real) and Hugging Face's position_ids for it (cumsum − 1, as its
    generate sets them; the pads' positions do not matter)."""
    tokens = _tokens(seed, (3, SEQ))
    mask = np.arange(SEQ)[None, :] >= np.array([0, 3, 6])[:, None]
    tokens[~mask] = 0
    return tokens, mask, np.maximum(np.cumsum(mask, axis=-1) - 1, 0)


def _relative_error(backend, got, want: np.ndarray) -> float:
    got = backend.to_numpy(got)
    assert got.shape == want.shape and got.dtype == np.float64
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


# ============================================================================ logits
@pytest.mark.spec("decoder_forward", tier="P", identity="matches_hf_gpt2")
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_gpt2_logits_match_transformers(hf, backend, tied):
    config, model = _gpt2(hf, tied)
    params, options = _gpt2_spec(backend, config, model)
    assert ("unembedding" in params) is not tied
    tokens = _tokens(1)
    got = spec.decoder_forward(backend.asarray(tokens), params, **options)
    err = _relative_error(backend, got, _hf_logits(hf, model, tokens))
    assert err <= GPT2_RTOL, f"GPT-2 ({'tied' if tied else 'untied'}): {err:.3g} relative"


@pytest.mark.spec("decoder_forward", tier="P", identity="matches_hf_llama")
@pytest.mark.parametrize(("tied", "kv_heads", "theta", "scaling"),
                         [(False, 2, 500000.0, None), (True, 2, 500000.0, None),
                          (False, 4, 10000.0, None), (False, 1, 10000.0, None),
                          (False, 2, 10000.0, LLAMA3_SCALING)],
                         ids=["gqa-untied-theta5e5", "gqa-tied-theta5e5", "mha-untied",
                              "mqa-untied", "gqa-llama3-scaling"])
def test_llama_logits_match_transformers(hf, backend, tied, kv_heads, theta, scaling):
    config, model = _llama(hf, tied, kv_heads, theta, scaling)
    params, options = _llama_spec(backend, config, model)
    assert options["num_kv_heads"] == kv_heads and options["rope_base"] == theta
    tokens = _tokens(2)
    want = _hf_logits(hf, model, tokens)
    got = spec.decoder_forward(backend.asarray(tokens), params, **options)
    err = _relative_error(backend, got, want)
    assert err <= LLAMA_RTOL, f"LLaMA (kv_heads={kv_heads}, θ={theta}): {err:.3g} relative"
    if scaling is not None:  # the scaling is seen: unscaled frequencies are far off
        unscaled = spec.decoder_forward(backend.asarray(tokens), params,
                                        **{**options, "rope_scaling": None})
        assert _relative_error(backend, unscaled, want) > 100 * LLAMA_RTOL


def _numpy_llama(model, tokens: np.ndarray, config) -> np.ndarray:
    """LLaMA in NumPy float64 straight from HF's state dict and config (its own RMSNorm,
    rotate_half RoPE with θᵢ = base^(−2i/d_head), repeated K/V heads, SwiGLU): HF's forward
    pass with its float32 islands removed, written independently of spec.checkpoints."""
    w = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in model.state_dict().items()}
    heads, kv, eps = config.num_attention_heads, config.num_key_value_heads, config.rms_norm_eps
    d_head = config.hidden_size // heads
    base = config.rope_parameters["rope_theta"]
    n = tokens.shape[-1]
    theta = base ** (-np.arange(0, d_head, 2) / d_head)
    angle = np.arange(n)[:, None] * np.concatenate([theta, theta])[None, :]
    cos, sin = np.cos(angle), np.sin(angle)

    def rms(x, g):
        return g * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)

    def rotate(x):  # x (..., h, n, d_head): x cos + rotate_half(x) sin
        half = d_head // 2
        return x * cos + np.concatenate([-x[..., half:], x[..., :half]], axis=-1) * sin

    def split(x, h):
        return np.moveaxis(x.reshape(*x.shape[:-1], h, d_head), -2, -3)

    x = w["model.embed_tokens.weight"][tokens]
    causal = np.tril(np.ones((n, n), dtype=bool))
    for i in range(config.num_hidden_layers):
        a = f"model.layers.{i}."
        h = rms(x, w[a + "input_layernorm.weight"])
        q = rotate(split(h @ w[a + "self_attn.q_proj.weight"].T, heads))
        k = rotate(split(h @ w[a + "self_attn.k_proj.weight"].T, kv)).repeat(heads // kv, -3)
        v = split(h @ w[a + "self_attn.v_proj.weight"].T, kv).repeat(heads // kv, -3)
        s = np.where(causal, q @ np.swapaxes(k, -1, -2) / np.sqrt(d_head), -np.inf)
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        o = np.moveaxis(p / p.sum(axis=-1, keepdims=True) @ v, -3, -2)
        x = x + o.reshape(*o.shape[:-2], heads * d_head) @ w[a + "self_attn.o_proj.weight"].T
        h = rms(x, w[a + "post_attention_layernorm.weight"])
        gate, up = h @ w[a + "mlp.gate_proj.weight"].T, h @ w[a + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[a + "mlp.down_proj.weight"].T
    head = w["model.embed_tokens.weight" if config.tie_word_embeddings else "lm_head.weight"]
    return rms(x, w["model.norm.weight"]) @ head.T


@pytest.mark.spec("decoder_forward", tier="P", identity="matches_hf_llama")
@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_llama_float64_against_independent_numpy(hf, backend, tied):
    """The float64 check HF cannot give: the spec's LLaMA against `_numpy_llama` (HF's
    architecture in float64 throughout) to 1e-10 relative, as for GPT-2; and that reference
    against HF itself at float32 accuracy, so it is the same model."""
    config, model = _llama(hf, tied)
    params, options = _llama_spec(backend, config, model)
    tokens = _tokens(4)
    want = _numpy_llama(model, tokens, config)
    assert _relative_error(backend, backend.asarray(want), _hf_logits(hf, model, tokens)) <= (
        LLAMA_RTOL)
    got = spec.decoder_forward(backend.asarray(tokens), params, **options)
    err = _relative_error(backend, got, want)
    assert err <= GPT2_RTOL, f"LLaMA in float64: {err:.3g} relative"


@pytest.mark.spec("decoder_forward", tier="P", identity="matches_hf_padded")
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_left_padded_batch_matches_transformers(hf, backend, family):
    """A left-padded batch with its attention_mask: at every real token the spec's logits
    equal HF's (given the same position_ids) and the logits of the row run alone, unpadded.
    The pads' own logits carry no meaning and are not compared."""
    config, model = _padded_model(hf, family)
    params, options = (_gpt2_spec if family == "gpt2" else _llama_spec)(backend, config, model)
    rtol = GPT2_RTOL if family == "gpt2" else LLAMA_RTOL
    tokens, mask, positions = _left_padded(5)
    want = _hf_logits(hf, model, tokens, mask, positions)
    got = backend.to_numpy(spec.decoder_forward(backend.asarray(tokens), params,
                                                attention_mask=backend.asarray(mask),
                                                **options))
    assert np.all(np.isfinite(got))
    scale = np.max(np.abs(want[mask]))
    assert np.max(np.abs(got[mask] - want[mask])) / scale <= rtol
    for row in range(3):
        alone = backend.to_numpy(spec.decoder_forward(backend.asarray(tokens[row, mask[row]]),
                                                      params, **options))
        np.testing.assert_allclose(got[row, mask[row]], alone, rtol=0,
                                   atol=GPT2_RTOL * scale)  # float64 on both sides


# ============================================================================ generation
@pytest.mark.spec("generate", tier="P", identity="matches_hf_greedy")
@pytest.mark.parametrize("padded", [False, True], ids=["equal-prompts", "left-padded"])
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_greedy_generation_matches_transformers(hf, backend, family, padded):
    """Twenty greedy steps (eight on Dask, see below) through the spec's KV cache, token for
    token against HF's generate(do_sample=False) (no end-of-sequence stop: min_new_tokens):
    two prompts of five tokens, or three left-padded prompts of 8, 5 and 2 tokens with their
    attention_mask (HF sets each row's position_ids from the mask, as the spec does)."""
    _, torch = hf
    config, model = _padded_model(hf, family) if padded else (
        _gpt2(hf, True) if family == "gpt2" else _llama(hf, False))
    params, options = (_gpt2_spec if family == "gpt2" else _llama_spec)(backend, config, model)
    lazy = array_api_compat.is_dask_array(backend.asarray(np.zeros(1)))
    # Dask builds one graph for the whole generation, and each new operation copies the
    # layer mapping of everything before it (HighLevelGraph.from_collections), so building
    # the graph grows quadratically with the steps: 4.7, 12.5 and 38.7 s for 5, 10 and 20
    # steps of GPT-2 here, and computing it 3.1, 8.8 and 26.2 s. Dask runs 8 steps; the eager
    # backends the full 20
    steps, extra, kwargs = 8 if lazy else 20, {}, {}
    if padded:
        prompt, mask, _ = _left_padded(6)
        extra["attention_mask"] = torch.from_numpy(mask.astype(np.int64))
        kwargs["attention_mask"] = backend.asarray(mask)
    else:
        prompt = _tokens(3, (2, 5))
    with torch.no_grad():
        want = model.generate(torch.from_numpy(prompt), max_new_tokens=steps,
                              min_new_tokens=steps, do_sample=False, **extra).numpy()
    # on a lazy backend (Dask) each step's value checks (the sampler's NaN and id checks)
    # compute the whole graph behind that step, so ten checked steps cost 55 forward passes
    # (200 s a model, measured); this test is about the tokens, and tier E proves the checks
    with spec.value_checks(not lazy):
        got = backend.to_numpy(spec.generate(params, backend.asarray(prompt), steps,
                                             sampler=spec.greedy, **options, **kwargs))
    np.testing.assert_array_equal(got, want)


# ============================================================================ parameter count
@pytest.mark.spec("transformer_parameter_count", tier="P", identity="matches_hf_count")
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_parameter_count_matches_num_parameters(hf, tied):
    _, model = _gpt2(hf, tied)
    assert spec.transformer_parameter_count(
        D, LAYERS, VOCAB, num_heads=HEADS, activation="gelu_tanh", max_positions=32,
        tied_embeddings=tied, attention_bias=True) == model.num_parameters()
    _, model = _llama(hf, tied)
    assert spec.transformer_parameter_count(
        D, LAYERS, VOCAB, d_ff=64, num_heads=HEADS, num_kv_heads=2, activation="swiglu",
        tied_embeddings=tied, norm="rms_norm", mlp_bias=False) == model.num_parameters()


# ============================================================================ mapping errors
@pytest.mark.spec("decoder_forward", tier="E")
def test_checkpoint_mapping_names_the_bad_key(hf, backend):
    """A missing key, an extra key and a wrong shape: ValueErrors naming the key and the
    expected shape; the caller's state dict is left as it was."""
    _, model = _gpt2(hf, True)
    state = _on_backend(backend, model)
    kwargs = {"n_layer": 2, "n_embd": D, "n_head": HEADS, "vocab_size": VOCAB,
              "n_positions": 32}
    keys = list(state)
    missing = {k: a for k, a in state.items() if k != "transformer.h.1.mlp.c_fc.bias"}
    with pytest.raises(ValueError, match=r"missing the key 'h\.1\.mlp\.c_fc\.bias' "
                                         r"\(expected shape \(128,\)\)"):
        gpt2_params(missing, **kwargs)
    with pytest.raises(ValueError, match=r"does not use: \['extra\.weight'\]"):
        gpt2_params({**state, "extra.weight": state["transformer.ln_f.bias"]}, **kwargs)
    with pytest.raises(ValueError, match=r"state_dict\['h\.0\.attn\.c_attn\.weight'\] must "
                                         r"have shape \(32, 96\), got \(32, 64\)"):
        gpt2_params({**state, "transformer.h.0.attn.c_attn.weight":
                     state["transformer.h.0.attn.c_attn.weight"][:, :64]}, **kwargs)
    with pytest.raises(ValueError, match=r"missing the key 'h\.2\.attn\.c_attn\.weight'"):
        gpt2_params(state, **{**kwargs, "n_layer": 3})
    assert list(state) == keys

    _, model = _llama(hf, False)
    state = _on_backend(backend, model)
    kwargs = {"num_hidden_layers": 2, "hidden_size": D, "num_attention_heads": HEADS,
              "num_key_value_heads": 2, "vocab_size": VOCAB, "intermediate_size": 64}
    with pytest.raises(ValueError, match=r"state_dict\['layers\.0\.self_attn\.k_proj\.weight'\]"
                                         r" must have shape \(32, 32\), got \(16, 32\)"):
        llama_params(state, **{**kwargs, "num_key_value_heads": 4})
    with pytest.raises(ValueError, match=r"missing the key 'lm_head\.weight' \(expected shape "
                                         r"\(50, 32\)\)"):
        llama_params({k: a for k, a in state.items() if k != "lm_head.weight"}, **kwargs)
    bias = {"model.layers.0.self_attn.q_proj.bias": state["model.norm.weight"]}
    with pytest.raises(ValueError, match=r"does not use: \['layers\.0\.self_attn\.q_proj\.bias'\]"):
        llama_params({**state, **bias}, **kwargs)
    params, _ = llama_params(state, **kwargs)
    assert "unembedding" in params and len(params["blocks"]) == 2
