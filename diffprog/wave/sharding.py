"""Shots across devices with :mod:`jax.sharding`: the same code on one CPU or many GPUs.

Shots are independent until their gradients are summed, so the natural layout is data
parallel: every array with a leading shot axis (source amplitudes and locations,
receiver locations, observed data) is split over a one-dimensional device mesh, and the
velocity model is replicated. Under ``jax.jit`` XLA's SPMD partitioner then runs each
device's shots locally and inserts the one all-reduce that sums the velocity gradient.
Nothing in :func:`~diffprog.wave.simulate` changes: sharding is a property of the inputs.
On several hosts, call ``jax.distributed.initialize()`` first; :func:`shot_mesh` then
spans every process's devices.

Example:
  >>> import jax, jax.numpy as jnp
  >>> mesh = shot_mesh()
  >>> amps, = shard_shots(jnp.zeros((len(jax.devices()), 1, 10)), mesh=mesh)
  >>> amps.sharding.spec == jax.sharding.PartitionSpec("shots")
  True

References:
  Xu, Y. et al. (2021). GSPMD: general and scalable parallelization for ML computation
  graphs. arXiv:2105.04663.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "shots"


def shot_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-dimensional mesh named ``"shots"`` over ``devices`` (default: all devices)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("shot_mesh needs at least one device")
    return Mesh(np.asarray(devices), (AXIS,))


def shard_shots(*arrays, mesh: Mesh | None = None) -> tuple:
    """Place arrays with a leading shot axis split over the mesh's ``"shots"`` axis.

    Args:
      *arrays: arrays whose axis 0 is the shot axis (its length must be a multiple of
        the number of devices: pad with zero-amplitude shots otherwise).
      mesh: a mesh with an axis named ``"shots"`` (default :func:`shot_mesh`).

    Returns:
      The arrays, sharded, as a tuple.
    """
    mesh = shot_mesh() if mesh is None else mesh
    n_dev = mesh.shape[AXIS]
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    out = []
    for i, a in enumerate(arrays):
        if np.ndim(a) == 0 or np.shape(a)[0] % n_dev:
            raise ValueError(
                f"array {i} has {np.shape(a)[0] if np.ndim(a) else 'no'} shots, not a multiple "
                f"of the {n_dev} devices on the mesh: pad with zero-amplitude shots or use "
                "fewer devices"
            )
        out.append(jax.device_put(a, sharding))
    return tuple(out)


def replicate(*arrays, mesh: Mesh | None = None) -> tuple:
    """Place arrays (e.g. the velocity model) in full on every device of the mesh."""
    mesh = shot_mesh() if mesh is None else mesh
    sharding = NamedSharding(mesh, PartitionSpec())
    return tuple(jax.device_put(a, sharding) for a in arrays)
