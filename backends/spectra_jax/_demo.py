"""The demo's JAX side: the same MLP (same initial weights) trained by ``jax.grad``, its
``spectra_jax.HessianOperator``, and a dense Hessian from forward-over-reverse on identity
columns (``jax.jvp`` of ``jax.grad``, compiled once for one block width)."""

from __future__ import annotations

from typing import Any

import numpy as np

from spectra._cli._demo import Digits, Trained


def train(digits: Digits, *, steps: int, lr: float, progress: bool) -> Trained:
    """Full-batch gradient descent in float64 (x64 switched on); returns the Hessian operator."""
    import jax
    import jax.flatten_util
    import jax.numpy as jnp
    from tqdm.auto import tqdm

    import spectra_jax

    jax.config.update("jax_enable_x64", True)
    params = {name: jnp.asarray(w) for name, w in digits.weights.items()}
    X, y = jnp.asarray(digits.inputs), jnp.asarray(digits.labels)

    def loss(p: Any, batch: Any) -> Any:
        inputs, labels = batch
        hidden = jnp.tanh(inputs @ p["0.weight"].T + p["0.bias"])
        logits = hidden @ p["2.weight"].T + p["2.bias"]
        picked = jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked)

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    losses = []
    for _ in tqdm(range(steps), desc="training", unit="step", disable=not progress):
        value, grads = value_and_grad(params, (X, y))
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        losses.append(float(value))
    last = float(loss(params, (X, y)))
    hidden = jnp.tanh(X @ params["0.weight"].T + params["0.bias"])
    accuracy = float(jnp.mean(jnp.argmax(hidden @ params["2.weight"].T + params["2.bias"], 1) == y))
    operator = spectra_jax.HessianOperator(loss, params, (X, y))

    def dense_hessian(progress: bool) -> np.ndarray:
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        gradient = jax.grad(lambda theta: loss(unravel(theta), (X, y)))
        columns = jax.jit(jax.vmap(lambda v: jax.jvp(gradient, (flat,), (v,))[1]))
        identity = np.eye(flat.shape[0])
        blocks = range(0, flat.shape[0], 64)
        bar = tqdm(blocks, desc="dense Hessian", unit="block", disable=not progress)
        # Rows of the identity in equal blocks (the last one padded), so it compiles once.
        padded = np.zeros((len(blocks) * 64, flat.shape[0]))
        padded[: flat.shape[0]] = identity
        return np.concatenate([np.asarray(columns(padded[i : i + 64])) for i in bar])[
            : flat.shape[0]
        ]

    return Trained(operator, dense_hessian, losses[0], last, accuracy, "jax")
