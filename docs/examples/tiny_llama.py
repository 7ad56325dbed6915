"""A tiny character-level Llama whose forward pass is `spec.decoder_forward`, trained on torch.

The model is the decoder of 002 §8 in the LLaMA arrangement (Touvron et al. 2023), at toy
scale: token embedding with no additive positions, pre-norm transformer blocks whose norms are
RMSNorm (002 §5.3), whose attention rotates queries and keys by RoPE (002 §6.2.2, in Hugging
Face's rotate-half layout) and shares each key/value head among two query heads (grouped-query
attention: 4 query heads, 2 K/V heads; 002 §7.4), and whose MLP is SwiGLU (002 §4.2.1, §8.2);
then a final RMSNorm and an output matrix of its own (untied from the embedding). Everything
else is tiny_gpt.py's: the same text (this project's own documentation and source, a few tens
of KB the repository already holds; nothing is downloaded), the same split, batches, learning
rate, steps and evaluation. PyTorch's autograd differentiates straight through the spec's
functions; the update is `spec.adam_step`; the loss is `spec.softmax_cross_entropy`. After
training it generates a sample with `spec.generate` (the KV cache, `spec.kv_cache_attention`,
each key rotated at its absolute position before it is cached) and checks that the cached
generation equals recomputing `spec.decoder_forward` over the whole prefix at every step.

How it differs from tiny_gpt.py, each an option of `spec.decoder_forward` or a key of its
parameters: ``norm="rms_norm"`` (no β, no mean subtracted) instead of LayerNorm;
``positional="rope"``, ``rope_layout="half"`` instead of sinusoidal positions added to the
embedding; ``num_kv_heads=2`` (grouped-query attention) instead of 4 K/V heads;
``activation="swiglu"`` with a hidden width of 8d/3 rounded up to a multiple of 4 (172 for
d = 64: three d × d_ff matrices, about the 8d² of GELU's two d × 4d) instead of GELU at 4d;
no biases; an untied ``unembedding``. The default sizes (2 layers, d_model 64, context 64) are
tiny_gpt.py's, and so, within 1 %, is the parameter count: the untied output matrix adds V·d
(7,808 for the 122 characters of the default text), grouped-query attention saves d² a layer
(8,192 in all), and the absent β and biases 448 more. The JSON records this model's count
(the arrays it trains, checked against `spec.transformer_parameter_count`, 002 §8.2) and
tiny_gpt.py's at the same width, depth and vocabulary (from the same function).

    python docs/examples/tiny_llama.py                    # torch on the CPU, 400 steps
    SPEC_BACKEND=torch:cuda python docs/examples/tiny_llama.py

It prints the training and validation loss with a progress bar, compares the validation loss
with the unigram entropy of the text (what a model that ignores context would get), writes the
loss curve as a PNG and the figures as JSON, and exits non-zero unless the validation loss ends
clearly (by --margin nats) below the unigram entropy.

Measured. The default run (``docs/results/examples/tiny_llama_torch.*``, 400 steps on
``torch``, CPU): 106,560 parameters against tiny_gpt.py's 107,392, validation loss 2.242
nats/char against a unigram entropy of 3.434, 88 ms a step, the cached generation equal to full
recomputation. Side by side at 1500 steps on the same text (one run each, one after the other):
the Llama's validation loss is 2.259 at step 500, where tiny_gpt.py is at 3.280, and is best,
2.242, at step 400; then it memorises its 54,000 training characters (training loss 0.78 at step
1500) and climbs back to 2.993, while tiny_gpt.py ends at 2.830. Hence the default of 400 steps.
No GPU run has been made yet.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

import backends
import spec

ROOT = Path(__file__).resolve().parents[2]

#: the decoder's own arrays, in the order of `leaves` (the blocks' follow, sorted by key)
TOP = ("embedding", "unembedding", "ln_f_gamma")


def corpus(limit: int) -> str:
    """This project's own prose and code: the README, the guides and the spec's chapters (the
    same text as tiny_gpt.py's)."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs" / "src").rglob("*.md")),
             *sorted((ROOT / "spec").glob("*.py"))]
    text = "\n".join(f.read_text(encoding="utf-8") for f in files if f.is_file())
    return text[:limit]


def unigram_entropy(ids: np.ndarray, vocab: int) -> float:
    """Entropy (nats per character) of the text's character frequencies."""
    counts = np.bincount(ids, minlength=vocab).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def swiglu_width(d: int) -> int:
    """LLaMA's SwiGLU hidden width: 8d/3 (2/3 of 4d, so its three matrices hold about the
    8d² of a GELU MLP's two), rounded up to a multiple of 4."""
    return 4 * math.ceil(int(8 * d / 3) / 4)


def init_params(torch, device, vocab, d, layers, heads, kv_heads, d_ff, seed):
    """The decoder mapping of spec.transformer for a LLaMA: N(0, 0.02) weights, RMSNorm gains
    at 1, no biases, no β, an untied output matrix."""
    g = torch.Generator().manual_seed(seed)
    d_kv = d // heads * kv_heads

    def normal(*shape, std=0.02):
        return (torch.randn(*shape, generator=g, dtype=torch.float32) * std).to(device)

    def ones(n):
        return torch.ones((n,), dtype=torch.float32, device=device)

    blocks = []
    for _ in range(layers):
        blocks.append({
            "ln1_gamma": ones(d),
            "w_q": normal(d, d), "w_k": normal(d_kv, d), "w_v": normal(d_kv, d),
            # residual projections scaled down with depth (GPT-2's initialisation)
            "w_o": normal(d, d, std=0.02 / math.sqrt(2 * layers)),
            "ln2_gamma": ones(d),
            "w1": normal(2 * d_ff, d),  # SwiGLU: the gate's d_ff rows, then the up projection's
            "w2": normal(d, d_ff, std=0.02 / math.sqrt(2 * layers)),
        })
    params = {"embedding": normal(vocab, d), "unembedding": normal(vocab, d), "blocks": blocks,
              "ln_f_gamma": ones(d)}
    for leaf in leaves(params):
        leaf.requires_grad_(True)
    return params


def leaves(params) -> list:
    out = [params[k] for k in TOP]
    for block in params["blocks"]:
        out += [block[k] for k in sorted(block)]
    return out


def rebuild(params, new_leaves):
    """The same mapping with its arrays replaced, in the order of `leaves`."""
    it = iter(new_leaves)
    out = {k: next(it) for k in TOP}
    out["blocks"] = [{k: next(it) for k in sorted(block)} for block in params["blocks"]]
    return out


def parameter_counts(vocab, d, layers, heads, kv_heads, d_ff) -> tuple[int, int]:
    """(this model's, tiny_gpt.py's at the same d, layers and vocabulary), by 002 §8.2."""
    llama = spec.transformer_parameter_count(
        d, layers, vocab, d_ff=d_ff, num_heads=heads, num_kv_heads=kv_heads,
        activation="swiglu", tied_embeddings=False, norm="rms_norm", mlp_bias=False)
    gpt = spec.transformer_parameter_count(d, layers, vocab, num_heads=heads)
    return llama, gpt


def train(args) -> dict:
    backend = backends.selected(args.backend)[0]
    if backend.library != "torch":
        raise SystemExit(f"tiny_llama trains with torch autograd: choose SPEC_BACKEND=torch or "
                         f"torch:cuda (got {backend.id})")
    import torch

    torch.manual_seed(args.seed)
    text = corpus(args.chars)
    chars = sorted(set(text))
    vocab = len(chars)
    ids = np.array([chars.index(c) for c in text], dtype=np.int64)
    split = int(0.9 * len(ids))
    train_ids, val_ids = ids[:split], ids[split:]
    h_unigram = unigram_entropy(train_ids, vocab)
    rng = np.random.default_rng(args.seed)
    device = backend.device
    d_ff = swiglu_width(args.d_model) if args.d_ff is None else args.d_ff
    params = init_params(torch, device, vocab, args.d_model, args.layers, args.heads,
                         args.kv_heads, d_ff, args.seed)
    counted = sum(int(p.numel()) for p in leaves(params))
    by_formula, gpt_count = parameter_counts(vocab, args.d_model, args.layers, args.heads,
                                             args.kv_heads, d_ff)
    if counted != by_formula:
        raise SystemExit(f"the model holds {counted} parameters, but "
                         f"spec.transformer_parameter_count says {by_formula}")
    state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in leaves(params)]
    options = {"num_heads": args.heads, "num_kv_heads": args.kv_heads, "activation": "swiglu",
               "norm": "rms_norm", "positional": "rope", "rope_layout": "half",
               "rope_base": args.rope_base}

    def batch(source, size):
        starts = rng.integers(0, len(source) - args.context - 1, size)
        block = np.stack([source[s:s + args.context + 1] for s in starts])
        return backend.asarray(block[:, :-1]), backend.asarray(block[:, 1:])

    def loss_of(p, x, y):
        logits = spec.decoder_forward(x, p, **options)
        return spec.softmax_cross_entropy(logits, y)  # mean over batch and positions

    def validation_loss(p) -> float:
        with torch.no_grad():
            losses = [float(loss_of(p, *batch(val_ids, args.batch))) for _ in range(8)]
        return float(np.mean(losses))

    try:
        from tqdm import tqdm
    except ImportError:
        def tqdm(iterable, **_):
            return iterable

    history = {"step": [], "train_loss": [], "val_loss": []}
    start = time.perf_counter()
    recent = []
    bar = tqdm(range(1, args.steps + 1), desc="training", disable=not args.progress)
    steps = 0
    for step in bar:
        x, y = batch(train_ids, args.batch)
        loss = loss_of(params, x, y)
        grads = torch.autograd.grad(loss, leaves(params))
        with torch.no_grad():
            updated = [spec.adam_step(p, m, v, g, step=step, lr=args.lr)
                       for p, (m, v), g in zip(leaves(params), state, grads)]
        params = rebuild(params, [theta.detach().requires_grad_(True) for theta, _, _ in updated])
        state = [(m, v) for _, m, v in updated]
        recent.append(float(loss.detach()))
        steps = step
        # --max-seconds: stop after the step that reaches it (the time per step stays honest)
        last = step == args.steps or (args.max_seconds is not None
                                      and time.perf_counter() - start >= args.max_seconds)
        if step % args.eval_every == 0 or last:
            val = validation_loss(params)
            history["step"].append(step)
            history["train_loss"].append(float(np.mean(recent)))
            history["val_loss"].append(val)
            recent = []
            message = (f"step {step:5d}  train {history['train_loss'][-1]:.3f}  val {val:.3f}  "
                       f"(unigram entropy {h_unigram:.3f})")
            if hasattr(bar, "write"):
                bar.write(message)
            else:
                print(message, flush=True)
        if last:
            break
    backend.synchronize()
    seconds = time.perf_counter() - start

    sample_text, cached_equals_full = generate_sample(torch, backend, params, chars, options,
                                                      args)
    return {
        "backend": backend.id, "device": backend.device_name(), "chars": len(text),
        "vocab": vocab, "d_model": args.d_model, "layers": args.layers, "heads": args.heads,
        "kv_heads": args.kv_heads, "d_ff": d_ff, "rope_base": args.rope_base,
        "context": args.context, "batch": args.batch, "steps": steps, "lr": args.lr,
        "parameters": counted, "parameters_of_tiny_gpt": gpt_count,
        "seconds": round(seconds, 2), "ms_per_step": round(1000 * seconds / steps, 2),
        "unigram_entropy": h_unigram, "final_val_loss": history["val_loss"][-1],
        "history": history, "sample": sample_text,
        "cached_generation_equals_full_recompute": cached_equals_full,
    }


def generate_sample(torch, backend, params, chars, options, args):
    """Sample with the KV cache (spec.generate) and again by full recomputation; compare."""
    prompt_text = "The softmax "
    prompt = backend.asarray(np.array([[chars.index(c) for c in prompt_text if c in chars]]))
    uniforms = iter(np.random.default_rng(args.seed + 1).random(args.sample_chars))

    def sampler_from(us):
        def sampler(logits):
            probs = spec.softmax(logits, temperature=args.temperature)
            u = backend.asarray(np.full(tuple(logits.shape[:-1]), next(us), dtype=np.float32))
            return spec.sample(probs, u)
        return sampler

    with torch.no_grad():
        cached = spec.generate(params, prompt, args.sample_chars, sampler=sampler_from(uniforms),
                               **options)
        uniforms = iter(np.random.default_rng(args.seed + 1).random(args.sample_chars))
        sampler = sampler_from(uniforms)
        tokens = prompt
        for _ in range(args.sample_chars):
            logits = spec.decoder_forward(tokens, params, **options)
            nxt = sampler(logits[..., -1, :])
            tokens = torch.cat([tokens, nxt[..., None].to(tokens.dtype)], dim=-1)
    same = bool(torch.equal(cached.cpu(), tokens.cpu()))
    text = "".join(chars[i] for i in backend.to_numpy(cached)[0])
    return text, same


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = result["history"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(h["step"], h["train_loss"], marker="o", label="training")
    ax.plot(h["step"], h["val_loss"], marker="s", label="validation")
    ax.axhline(result["unigram_entropy"], color="grey", linestyle=":",
               label=f"unigram entropy {result['unigram_entropy']:.2f} nats")
    ax.set(xlabel="step", ylabel="cross-entropy (nats per character)",
           title=f"tiny Llama ({result['parameters']:,} parameters) on {result['backend']}, "
                 f"{result['ms_per_step']:.0f} ms/step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default=None, help="torch or torch:cuda (default: $SPEC_BACKEND)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop training after this many seconds, at most --steps steps")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4, help="query heads")
    p.add_argument("--kv-heads", type=int, default=2,
                   help="key/value heads (grouped-query attention; must divide --heads)")
    p.add_argument("--d-ff", type=int, default=None,
                   help="SwiGLU hidden width (default: 8·d_model/3 rounded up to a multiple "
                        "of 4)")
    p.add_argument("--rope-base", type=float, default=10000.0, help="RoPE's θ base")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--chars", type=int, default=60_000, help="characters of text to use")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--sample-chars", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--margin", type=float, default=0.5,
                   help="required gap (nats) between unigram entropy and validation loss")
    p.add_argument("--out", type=Path, default=Path("tiny-llama-results"))
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    result = train(args)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"tiny_llama_{backends.file_stem(result['backend'])}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    plot(result, args.out / f"{stem}.png")
    print(f"validation loss {result['final_val_loss']:.3f} nats/char vs unigram entropy "
          f"{result['unigram_entropy']:.3f}; {result['parameters']:,} parameters "
          f"(tiny_gpt.py: {result['parameters_of_tiny_gpt']:,}); {result['ms_per_step']:.1f} "
          f"ms/step on {result['backend']}; cached generation equals full recompute: "
          f"{result['cached_generation_equals_full_recompute']}")
    print("sample:", repr(result["sample"]))
    ok = (result["cached_generation_equals_full_recompute"]
          and result["final_val_loss"] <= result["unigram_entropy"] - args.margin)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
