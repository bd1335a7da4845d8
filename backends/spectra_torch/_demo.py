"""The demo's torch side: train the MLP, its ``spectra_torch.HessianOperator``, and a dense
Hessian from ``torch.func`` (forward-over-reverse on identity columns, independent of the
operator's code path)."""

from __future__ import annotations

from typing import Any

import numpy as np

from spectra._cli._demo import HIDDEN, Digits, Trained


def train(digits: Digits, *, steps: int, lr: float, progress: bool) -> Trained:
    """Full-batch gradient descent from the seeded weights; returns the Hessian operator."""
    import torch
    from tqdm.auto import tqdm

    import spectra_torch

    model = torch.nn.Sequential(
        torch.nn.Linear(64, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, 10)
    ).double()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(torch.from_numpy(digits.weights[name]))
    X, y = torch.from_numpy(digits.inputs), torch.from_numpy(digits.labels)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc="training", unit="step", disable=not progress):
        optimizer.zero_grad()
        loss = criterion(model(X), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        outputs = model(X)
        last = float(criterion(outputs, y))
        accuracy = float((outputs.argmax(dim=1) == y).double().mean())
    operator = spectra_torch.HessianOperator(model, criterion, (X, y))

    def dense_hessian(progress: bool) -> np.ndarray:
        return _dense_hessian(model, criterion, X, y, progress)

    return Trained(operator, dense_hessian, losses[0], last, accuracy, "torch")


def _dense_hessian(model: Any, criterion: Any, X: Any, y: Any, progress: bool) -> np.ndarray:
    import torch
    from tqdm.auto import tqdm

    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(flat: Any) -> Any:
        pieces = torch.split(flat, [int(np.prod(s)) for s in shapes])
        params = {n: p.reshape(s) for n, p, s in zip(names, pieces, shapes, strict=True)}
        return criterion(torch.func.functional_call(model, params, (X,)), y)

    gradient = torch.func.grad(loss)

    def column(v: Any) -> Any:
        return torch.func.jvp(gradient, (theta,), (v,))[1]

    n = theta.numel()
    identity = torch.eye(n, dtype=theta.dtype)
    block = 64
    columns = [
        torch.func.vmap(column)(identity[i : i + block])
        for i in tqdm(range(0, n, block), desc="dense Hessian", unit="block", disable=not progress)
    ]
    return torch.cat(columns).numpy()
