"""Shots across devices with :mod:`jax.sharding`: the same code on one CPU or many GPUs.

Shots are independent until their gradients are summed, so the natural layout is data
parallel: every array with a leading shot axis (source amplitudes and locations,
receiver locations, observed data) is split over a one-dimensional device mesh, and the
velocity model is replicated. Under ``jax.jit`` XLA's SPMD partitioner then runs each
device's shots locally and inserts the one all-reduce that sums the velocity gradient.
Nothing in :func:`~diffprog.wave.simulate` changes: sharding is a property of the inputs.
On several hosts, call ``jax.distributed.initialize()`` first; :func:`shot_mesh` then
spans every process's devices. For forward modelling on a multi-core CPU,
:func:`simulate_per_device` (one JAX CPU device per core) also runs each device's
shots in groups that fit its caches; a sharded ``simulate`` runs all of a device's
shots together.

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

import dataclasses
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


def simulate_per_device(
    velocity, source_amplitudes, source_locations, receiver_locations, cfg, *, mesh=None
):
    """:func:`~diffprog.wave.simulate` with each device running its own shots.

    The shot arrays are split over the mesh's ``"shots"`` axis (their length must be a
    multiple of the number of devices) and the velocity is replicated; every device
    simulates its shots with :func:`jax.shard_map`, in groups that fit its caches
    (:attr:`~diffprog.wave.AcousticConfig.shots_per_pass`, chosen per device), and the
    traces come back split over the devices. On a CPU, with one JAX device per core
    (``jax.config.update("jax_num_cpu_devices", n)`` before JAX starts), each core then
    runs whole time loops on its own: 16 shots of the Marmousi-2 benchmark ran 2.0×
    faster on two such devices than on one device with two threads, where XLA splits
    every step's loops between the threads. Forward modelling only (use
    :func:`shard_shots` with ``jax.grad`` for gradients).

    Returns:
      ``[shot, receiver, nt]`` traces, sharded over the devices.
    """
    from diffprog.wave import _reverse
    from diffprog.wave.propagation import make_grid, simulate, validate

    # the value checks need concrete arrays: run them here, before shard_map traces them
    validate(velocity, source_amplitudes, source_locations, receiver_locations, cfg)
    mesh = shot_mesh() if mesh is None else mesh
    n_dev = mesh.shape[AXIS]
    n_shots = np.shape(source_amplitudes)[0]
    _check_even(n_shots, n_dev, "simulate_per_device")
    if cfg.shots_per_pass is None:
        grid = make_grid(tuple(np.shape(velocity)), cfg)
        dtype = jax.numpy.result_type(velocity)
        per_device = _reverse.cache_fit(n_shots // n_dev, grid, dtype, fields=3, any_devices=True)
        cfg = dataclasses.replace(cfg, shots_per_pass=per_device)
    shots = PartitionSpec(AXIS)
    run = jax.shard_map(
        lambda v, a, s, r: simulate(v, a, s, r, cfg),
        mesh=mesh,
        in_specs=(PartitionSpec(), shots, shots, shots),
        out_specs=shots,
        # the time loop's initial state is built from constants (device-invariant) and
        # becomes per-shot data after one step; a forward pass needs no replication check
        check_vma=False,
    )
    return _forward_only(run)(velocity, source_amplitudes, source_locations, receiver_locations)


def misfit_value_and_grad_per_device(
    velocity,
    observed,
    source_amplitudes,
    source_locations,
    receiver_locations,
    cfg,
    *,
    mesh=None,
    shots_per_batch="auto",
):
    """Value and velocity gradient of :func:`~diffprog.wave.misfit` over a survey, each
    device differentiating its own shots (data parallel, as :func:`simulate_per_device`
    runs forward models): both are summed over the devices with one ``psum``.

    The shot arrays (``observed`` included) are split over the mesh's ``"shots"`` axis;
    their length must be a multiple of the number of devices. ``shots_per_batch``: shots
    per batch within a device (:func:`~diffprog.wave.misfit`); ``"auto"`` picks it per
    device with :func:`~diffprog.wave.shots_per_batch`, ``None`` runs a device's shots
    together. On a 2-core CPU with two devices this is how
    ``benchmarks/wave_deepwave.py`` differentiates 16 Marmousi-2 shots.

    Returns:
      ``(J, ∂J/∂velocity)``, equal to ``jax.value_and_grad(misfit)`` on one device up to
      the order of the sums.
    """
    from diffprog.wave import _reverse
    from diffprog.wave.born import misfit
    from diffprog.wave.propagation import validate

    validate(velocity, source_amplitudes, source_locations, receiver_locations, cfg)
    mesh = shot_mesh() if mesh is None else mesh
    n_dev = mesh.shape[AXIS]
    n_shots = np.shape(source_amplitudes)[0]
    # the whole survey's shapes, checked before shard_map splits them (misfit's own check
    # would see one device's part, or shard_map would fail first on an uneven split)
    expected = (n_shots, np.shape(receiver_locations)[1], cfg.nt)
    if np.shape(observed) != expected:
        raise ValueError(
            f"misfit_value_and_grad_per_device: observed has shape {np.shape(observed)}; "
            f"the traces are {expected} (shot, receiver, time step)"
        )
    _check_even(n_shots, n_dev, "misfit_value_and_grad_per_device")
    batch = shots_per_batch
    if batch == "auto":
        dtype = jax.numpy.result_type(velocity)
        batch = _reverse.shots_per_batch(
            n_shots // n_dev, np.shape(velocity), cfg, dtype, per_device=True
        )

    def local(v, obs, amp, src, rec):
        loss = lambda v: misfit(v, obs, amp, src, rec, cfg, shots_per_batch=batch)
        value, grad = jax.value_and_grad(loss)(v)
        return jax.lax.psum(value, AXIS), jax.lax.psum(grad, AXIS)

    shots = PartitionSpec(AXIS)
    run = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(PartitionSpec(), shots, shots, shots, shots),
        out_specs=(PartitionSpec(), PartitionSpec()),
        check_vma=False,  # (as in simulate_per_device; the psum makes the outputs replicated)
    )
    return run(velocity, observed, source_amplitudes, source_locations, receiver_locations)


def _check_even(n_shots: int, n_dev: int, name: str) -> None:
    if n_shots % n_dev:
        raise ValueError(
            f"{name}: {n_shots} shots do not split evenly over {n_dev} devices; "
            "pad with zero-amplitude shots or use fewer devices"
        )


def _forward_only(fn):
    """``fn`` with a clear error under differentiation: without the replication check a
    gradient through the shard_map would miss the sum over devices (silently wrong)."""

    @jax.custom_jvp
    def wrapped(*args):
        return fn(*args)

    @wrapped.defjvp
    def _refuse(primals, tangents):
        raise ValueError(
            "simulate_per_device is for forward modelling only; to differentiate, place "
            "the shot arrays with shard_shots and use jax.grad of simulate (or misfit)"
        )

    return wrapped
