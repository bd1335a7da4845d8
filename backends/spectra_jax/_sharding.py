"""Data-parallel curvature on a JAX device mesh: the batch sharded, everything else replicated.

With ``data_sharding=`` a curvature operator places each batch's arrays with that sharding (the
leading, sample axis split over the mesh's devices) and the parameters, the tangents and the
products replicated on the same mesh. The compiled products are the same ``jit`` functions as on
one device: XLA partitions them (GSPMD), each device differentiates its slice of the batch, and
the sum over the batch becomes one cross-device reduction of a parameter-sized vector per product.
The result is the single-device operator, up to the order of that sum.

This is ``jit`` over sharded inputs, not ``shard_map``: inside ``shard_map`` the gradient with
respect to replicated parameters already comes back summed over the devices, and an explicit
``psum`` on top would count every sample once per device.

A batch whose sample count does not divide evenly over the sharded axis (a short last batch) is
placed replicated instead: still exact, computed by every device.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["Placement", "check_data_sharding"]


class Placement:
    """Where batches (sharded by samples) and everything else (replicated) live on a mesh."""

    def __init__(self, data: NamedSharding):
        self.data = data
        self.replicated = NamedSharding(data.mesh, PartitionSpec())
        parts: tuple[Any, ...] = tuple(data.spec)
        spec = parts[0] if parts else None
        axes = () if spec is None else (spec,) if isinstance(spec, str) else tuple(spec)
        self.parts = 1
        for axis in axes:
            self.parts *= int(data.mesh.shape[axis])

    def batch(self, batch: Any, is_array: Any) -> Any:
        """The batch's arrays sharded by their leading axis where it divides evenly."""

        def place(x: Any) -> Any:
            if not is_array(x):
                return x
            shape: tuple[int, ...] = tuple(getattr(x, "shape", ()))
            if len(shape) >= 1 and shape[0] % self.parts == 0:
                return jax.device_put(x, self.data)
            return jax.device_put(x, self.replicated)

        return jax.tree_util.tree_map(place, batch)

    def replicate(self, tree: Any) -> Any:
        """Every array leaf of ``tree`` replicated on the mesh."""
        return jax.tree_util.tree_map(
            lambda x: jax.device_put(x, self.replicated) if isinstance(x, jax.Array) else x, tree
        )


def check_data_sharding(data_sharding: object) -> Placement | None:
    """``None``, a ``NamedSharding`` of the batch arrays, or a ``Mesh`` (samples over all axes)."""
    if data_sharding is None:
        return None
    if isinstance(data_sharding, Mesh):
        data_sharding = NamedSharding(data_sharding, PartitionSpec(data_sharding.axis_names))
    if not isinstance(data_sharding, NamedSharding):
        raise TypeError(
            "data_sharding must be a jax.sharding.NamedSharding for the batch arrays (e.g. "
            "NamedSharding(mesh, PartitionSpec('data'))) or a jax.sharding.Mesh; got "
            f"{type(data_sharding).__name__}"
        )
    if any(part is not None for part in tuple(data_sharding.spec)[1:]):
        raise ValueError(
            "data_sharding may split only the leading (sample) axis of the batch arrays; got "
            f"spec {data_sharding.spec}"
        )
    return Placement(data_sharding)
