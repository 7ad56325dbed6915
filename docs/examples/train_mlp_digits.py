"""Train a digit classifier with nothing but the spec's equations, on any backend.

The network is the one of 001 (vectors to MNIST), scaled to scikit-learn's bundled 8×8 digits
(1,797 images, no download): 64 → hidden → 10, ReLU, softmax cross-entropy, trained with Adam.
Every step of learning is a `spec` function — `dropout` on the inputs, `mlp_forward`,
`softmax_cross_entropy` and its gradient, `mlp_backward` (backpropagation), `adam_step` — so the
same script trains on NumPy, PyTorch (CPU or CUDA), CuPy, JAX or Dask:

    SPEC_BACKEND=torch python docs/examples/train_mlp_digits.py
    SPEC_BACKEND=cupy  python docs/examples/train_mlp_digits.py --out results/

It prints train and test accuracy after every epoch, shows a progress bar, writes the loss and
accuracy curves as a PNG and the figures as JSON, and exits non-zero if the final test accuracy
is below --require (default 0.95).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

import backends
import spec


def load_digits(seed: int):
    """The 8×8 digits, scaled to [0, 1], split 80/20 (stratified, fixed seed)."""
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    data = _load()
    x = (data.data / 16.0).astype(np.float32)
    return train_test_split(x, data.target.astype(np.int64), test_size=0.2, random_state=seed,
                            stratify=data.target)


def init_params(backend, sizes, rng, dtype):
    """He-normal weights (W is (out, in)) and zero biases, made on the host, moved once."""
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        w = rng.normal(0.0, spec.he_normal_std(fan_in), size=(fan_out, fan_in)).astype(dtype)
        params.append((backend.asarray(w), backend.asarray(np.zeros(fan_out, dtype=dtype))))
    return params


def accuracy(backend, params, x, y) -> float:
    logits, _ = spec.mlp_forward(x, params, activation="relu")
    predicted = backend.to_numpy(backend.xp.argmax(logits, axis=-1))
    return float(np.mean(predicted == y))


def train(args) -> dict:
    backend = backends.selected(args.backend)[0]
    xp = backend.xp
    rng = np.random.default_rng(args.seed)
    x_train, x_test, y_train, y_test = load_digits(args.seed)
    dtype = "float32"
    xb_train, xb_test = backend.asarray(x_train), backend.asarray(x_test)
    params = init_params(backend, [64, args.hidden, 10], rng, dtype)
    moments = [tuple((xp.zeros_like(p), xp.zeros_like(p)) for p in layer) for layer in params]

    history = {"epoch": [], "loss": [], "train_accuracy": [], "test_accuracy": []}
    try:
        from tqdm import tqdm
    except ImportError:  # the progress bar is a nicety, not a requirement
        def tqdm(iterable, **_):
            return iterable

    step, start = 0, time.perf_counter()
    n = x_train.shape[0]
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(n)
        losses = []
        batches = range(0, n, args.batch)
        for first in tqdm(batches, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                          disable=not args.progress):
            idx = order[first:first + args.batch]
            x = backend.asarray(x_train[idx])
            y = backend.asarray(y_train[idx])
            u = backend.asarray(rng.random(x_train[idx].shape, dtype=np.float32))
            x = spec.dropout(x, u, rate=args.dropout)
            logits, cache = spec.mlp_forward(x, params, activation="relu")
            losses.append(spec.softmax_cross_entropy(logits, y))
            delta = spec.softmax_cross_entropy_grad(logits, y, reduction="mean")
            grads = spec.mlp_backward(delta, cache, params, activation="relu")
            step += 1
            new_params, new_moments = [], []
            for layer, layer_grads, layer_moments in zip(params, grads, moments):
                updated = [spec.adam_step(p, m, v, g, step=step, lr=args.lr)
                           for p, g, (m, v) in zip(layer, layer_grads, layer_moments)]
                new_params.append(tuple(theta for theta, _, _ in updated))
                new_moments.append(tuple((m, v) for _, m, v in updated))
            params, moments = new_params, new_moments
        loss = float(np.mean([float(backend.to_numpy(v)) for v in losses]))
        train_acc = accuracy(backend, params, xb_train, y_train)
        test_acc = accuracy(backend, params, xb_test, y_test)
        for key, value in (("epoch", epoch), ("loss", loss), ("train_accuracy", train_acc),
                           ("test_accuracy", test_acc)):
            history[key].append(value)
        print(f"epoch {epoch:3d}  loss {loss:.4f}  train {train_acc:.2%}  test {test_acc:.2%}",
              flush=True)
    backend.synchronize()
    elapsed = time.perf_counter() - start
    return {"backend": backend.id, "device": backend.device_name(), "epochs": args.epochs,
            "hidden": args.hidden, "lr": args.lr, "batch": args.batch, "dropout": args.dropout,
            "seed": args.seed, "seconds": round(elapsed, 2),
            "final_test_accuracy": history["test_accuracy"][-1], "history": history}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = result["history"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(h["epoch"], h["loss"], marker="o")
    left.set(xlabel="epoch", ylabel="training loss (softmax cross-entropy)", yscale="log",
             title="loss")
    right.plot(h["epoch"], h["train_accuracy"], marker="o", label="train")
    right.plot(h["epoch"], h["test_accuracy"], marker="s", label="test")
    right.axhline(0.95, color="grey", linestyle=":", label="95 %")
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0.5, 1.0))
    right.legend()
    fig.suptitle(f"MLP 64-{result['hidden']}-10 on 8×8 digits, trained by spec on "
                 f"{result['backend']} ({result['seconds']:.1f} s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default=None, help="backend id (default: $SPEC_BACKEND or numpy)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.1, help="input dropout rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("mlp-digits-results"))
    p.add_argument("--require", type=float, default=0.95, help="minimum final test accuracy")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    result = train(args)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"mlp_digits_{backends.file_stem(result['backend'])}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    plot(result, args.out / f"{stem}.png")
    print(f"final test accuracy {result['final_test_accuracy']:.2%} on {result['backend']} "
          f"in {result['seconds']:.1f} s; wrote {args.out / stem}.png and .json")
    return 0 if result["final_test_accuracy"] >= args.require else 1


if __name__ == "__main__":
    sys.exit(main())
