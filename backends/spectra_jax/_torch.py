"""The same network in JAX as in torch: copy a torch model's weights into JAX parameters.

Cross-framework comparison is one of spectra's uses: the Hessian of a model must not depend on
the framework that differentiates it. :func:`from_torch` turns a torch ``nn.Sequential`` (nested
ones included) into a pure ``apply_fn(params, inputs)`` and a ``params`` pytree holding a copy of
its weights. ``params`` is an ``OrderedDict`` keyed by torch's parameter names, in
``named_parameters()`` order, each leaf in torch's layout, so that the flat parameter vector of a
``spectra_jax`` operator is, entry for entry, the vector of the ``spectra_torch`` operator of the
same model, and the same seed gives the same probes in both.

===================================  ========================================================
torch layer                           JAX computation (same parameter layout)
===================================  ========================================================
``Linear(in, out)``                   ``x @ weight.T + bias`` (weight ``(out, in)``)
``Conv2d`` (zero padding)             ``lax.conv_general_dilated``, NCHW / OIHW, stride,
                                      padding (ints, ``"same"``, ``"valid"``), dilation,
                                      groups; ``+ bias[:, None, None]``
``LayerNorm(shape, eps)``             ``(x - mean) / sqrt(var + eps) * weight + bias`` over the
                                      last ``len(shape)`` axes (biased variance)
``Tanh ReLU Sigmoid SiLU GELU ELU``   ``jax.nn`` (GELU ``approximate="none"`` is exact erf,
``LeakyReLU Softplus``                ``"tanh"`` the tanh form; Softplus keeps torch's
                                      ``beta`` and ``threshold``)
``Flatten(start, end) Identity``      reshape; identity
``Dropout`` in eval mode              identity (train mode is refused: not a fixed function)
``Sequential``                        composition, names prefixed as in torch
===================================  ========================================================

torch is imported only when :func:`from_torch` is called.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["from_torch"]

Layer = Callable[[Any, Any], Any]


def from_torch(module: Any) -> tuple[Callable[[Any, Any], Any], OrderedDict[str, jax.Array]]:
    """``(apply_fn, params)``: a JAX twin of a torch ``nn.Sequential`` and a copy of its weights.

    ``apply_fn(params, inputs)`` computes what ``module(inputs)`` does; ``params`` maps each of
    the module's parameter names to a ``jax.Array`` copy (float64 stays float64 with x64 on).
    Layers outside the mapping in the module docstring raise ``TypeError`` naming them.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    layer = _convert(module, "", torch)
    params = OrderedDict(
        (name, jnp.asarray(p.detach().cpu().numpy())) for name, p in module.named_parameters()
    )
    return layer, params


def _convert(module: Any, prefix: str, torch: Any) -> Layer:
    nn = torch.nn
    if isinstance(module, nn.Sequential):
        layers = [
            _convert(child, f"{prefix}{name}.", torch) for name, child in module.named_children()
        ]

        def sequential(params: Any, x: Any) -> Any:
            for layer in layers:
                x = layer(params, x)
            return x

        return sequential
    if isinstance(module, nn.Linear):
        return _linear(prefix, module.bias is not None)
    if isinstance(module, nn.Conv2d):
        return _conv2d(prefix, module)
    if isinstance(module, nn.LayerNorm):
        return _layer_norm(prefix, module)
    if isinstance(module, nn.Dropout) and module.training and module.p > 0:
        raise TypeError(f"{prefix or 'module'}: Dropout in training mode; call module.eval()")
    activation = _activation(module, nn)
    if activation is None:
        raise TypeError(
            f"from_torch cannot convert {type(module).__name__} at {prefix or 'the top'!r}; "
            "supported: Sequential, Linear, Conv2d, LayerNorm, Flatten, Identity, Dropout (eval) "
            "and the activations Tanh, ReLU, Sigmoid, SiLU, GELU, ELU, LeakyReLU, Softplus"
        )
    return lambda params, x: activation(x)


def _linear(prefix: str, bias: bool) -> Layer:
    def linear(params: Any, x: Any) -> Any:
        y = x @ params[f"{prefix}weight"].T
        return y + params[f"{prefix}bias"] if bias else y

    return linear


def _conv2d(prefix: str, conv: Any) -> Layer:
    if conv.padding_mode != "zeros":
        raise TypeError(f"{prefix}: Conv2d padding_mode={conv.padding_mode!r}; only 'zeros'")
    if isinstance(conv.padding, str):
        padding: Any = conv.padding.upper()
    else:
        padding = [(p, p) for p in conv.padding]
    stride, dilation, groups = tuple(conv.stride), tuple(conv.dilation), conv.groups
    bias = conv.bias is not None

    def conv2d(params: Any, x: Any) -> Any:
        y = jax.lax.conv_general_dilated(
            x,
            params[f"{prefix}weight"],
            window_strides=stride,
            padding=padding,
            rhs_dilation=dilation,
            feature_group_count=groups,
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
            precision=jax.lax.Precision.HIGHEST,
        )
        return y + params[f"{prefix}bias"][:, None, None] if bias else y

    return conv2d


def _layer_norm(prefix: str, norm: Any) -> Layer:
    axes = tuple(range(-len(norm.normalized_shape), 0))
    eps, affine = float(norm.eps), norm.elementwise_affine
    bias = affine and norm.bias is not None

    def layer_norm(params: Any, x: Any) -> Any:
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.mean((x - mean) ** 2, axis=axes, keepdims=True)
        y = (x - mean) / jnp.sqrt(var + eps)
        if affine:
            y = y * params[f"{prefix}weight"]
        return y + params[f"{prefix}bias"] if bias else y

    return layer_norm


def _activation(module: Any, nn: Any) -> Callable[[Any], Any] | None:
    simple: dict[type, Callable[[Any], Any]] = {
        nn.Tanh: jnp.tanh,
        nn.ReLU: jax.nn.relu,
        nn.Sigmoid: jax.nn.sigmoid,
        nn.SiLU: jax.nn.silu,
        nn.Identity: lambda x: x,
        nn.Dropout: lambda x: x,
    }
    if type(module) in simple:
        return simple[type(module)]
    if isinstance(module, nn.GELU):
        exact = module.approximate == "none"
        return lambda x: jax.nn.gelu(x, approximate=not exact)
    if isinstance(module, nn.ELU):
        alpha = float(module.alpha)
        return lambda x: jax.nn.elu(x, alpha)
    if isinstance(module, nn.LeakyReLU):
        slope = float(module.negative_slope)
        return lambda x: jax.nn.leaky_relu(x, slope)
    if isinstance(module, nn.Softplus):
        beta, threshold = float(module.beta), float(module.threshold)
        return lambda x: jnp.where(x * beta > threshold, x, jax.nn.softplus(beta * x) / beta)
    if isinstance(module, nn.Flatten):
        return _flatten(module.start_dim, module.end_dim)
    return None


def _flatten(start: int, end: int) -> Callable[[Any], Any]:
    def flatten(x: Any) -> Any:
        shape = x.shape
        first, last = start % len(shape), end % len(shape)
        merged = int(np.prod(shape[first : last + 1]))
        return x.reshape(*shape[:first], merged, *shape[last + 1 :])

    return flatten
