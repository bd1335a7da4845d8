"""spectra_jax with ``data_sharding=``: 4 CPU devices, batch sharded, equal to one device.

JAX fixes its device count when its backend starts, so the checks run in a fresh interpreter
that asks for 4 CPU devices first, and report back as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytest.importorskip("jax")
pytestmark = pytest.mark.slow  # one fresh interpreter compiling a dozen small programs

CHILD = textwrap.dedent(
    """
    import json, warnings
    import jax
    jax.config.update("jax_num_cpu_devices", 4)
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import spectra, spectra_jax

    mesh = Mesh(np.array(jax.devices()), ("data",))
    sharding = NamedSharding(mesh, P("data"))
    rng = np.random.default_rng(0)
    params = {"w1": jnp.asarray(rng.standard_normal((5, 4))), "b1": jnp.zeros(4),
              "w2": jnp.asarray(rng.standard_normal((4, 3)))}
    X = rng.standard_normal((22, 5)); y = rng.integers(0, 3, 22)
    data = [(X[:8], y[:8]), (X[8:16], y[8:16]), (X[16:], y[16:])]  # 8, 8 sharded; 6 replicated
    even = [(X[:8], y[:8]), (X[8:16], y[8:16])]

    def apply(p, x):
        return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]

    def per_sample(p, batch):
        logits = apply(p, batch[0])
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), batch[1][:, None], 1)[:, 0]

    def loss(p, batch):
        return jnp.mean(per_sample(p, batch))

    def criterion(logits, labels):
        return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

    makers = {
        "hessian": lambda **kw: spectra_jax.HessianOperator(loss, params, data, **kw),
        "ggn": lambda **kw: spectra_jax.GGNOperator(apply, criterion, params, even, **kw),
        "fisher": lambda **kw: spectra_jax.FisherOperator(apply, params, even, seed=3, **kw),
    }
    V = rng.standard_normal((36, 2))
    report = {"errors": {}}
    cases = [("hessian", "linearize"), ("ggn", "recompute"), ("fisher", "linearize")]
    kept = {}
    for name, mode in cases:
        one = makers[name](mode=mode)
        many = makers[name](mode=mode, data_sharding=sharding)
        want = np.asarray(one.matmat(jnp.asarray(V, device=one.device)))
        Y = many.matmat(jnp.asarray(V, device=many.device))
        got = np.asarray(Y)
        report["errors"][f"{name}/{mode}"] = float(np.abs(got - want).max() / np.abs(want).max())
        report.setdefault("out_devices", []).append(len(Y.devices()))
        kept[name] = one, many
    one, op = kept["hessian"]
    placed = op._to_device(data[0])
    report["batch_shards"] = [s.data.shape[0] for s in placed[0].addressable_shards]
    report["short_batch_shards"] = [
        s.data.shape[0] for s in op._to_device(data[2])[0].addressable_shards]
    a = spectra.lanczos(one, k=2, seed=0, tol=1e-10)
    b = spectra.lanczos(op, k=2, seed=0, tol=1e-10)
    report["lanczos"] = [np.asarray(a.eigenvalues).tolist(), np.asarray(b.eigenvalues).tolist()]
    report["n_matvec"] = [a.n_matvec, b.n_matvec]
    report["mesh_batch_shards"] = [
        s.data.shape[0]
        for s in makers["hessian"](data_sharding=mesh)._to_device(data[0])[0].addressable_shards]
    try:
        makers["hessian"](data_sharding="data")
    except TypeError as error:
        report["bad_type"] = str(error)
    try:
        makers["hessian"](data_sharding=NamedSharding(
            Mesh(np.array(jax.devices()).reshape(2, 2), ("a", "b")), P("a", "b")))
    except ValueError as error:
        report["bad_spec"] = str(error)
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sharded_products_equal_one_device(report: dict[str, Any]) -> None:
    assert len(report["errors"]) == 3
    for name, error in report["errors"].items():
        assert error <= 1e-12, (name, error)
    assert report["out_devices"] == [4] * 3  # replicated on the mesh


def test_batches_are_split_over_the_devices(report: dict[str, Any]) -> None:
    assert report["batch_shards"] == [2, 2, 2, 2]
    assert report["mesh_batch_shards"] == [2, 2, 2, 2]  # a Mesh: samples over all its axes
    assert report["short_batch_shards"] == [6, 6, 6, 6]  # 6 samples do not split 4 ways


def test_lanczos_on_the_mesh_equals_one_device(report: dict[str, Any]) -> None:
    one, many = report["lanczos"]
    for a, b in zip(one, many, strict=True):
        assert abs(a - b) <= 1e-10 * abs(a)
    assert report["n_matvec"][0] == report["n_matvec"][1]


def test_bad_data_sharding_raises(report: dict[str, Any]) -> None:
    assert "data_sharding must be a jax.sharding.NamedSharding" in report["bad_type"]
    assert "leading (sample) axis" in report["bad_spec"]
