"""Data parallelism with ``jax.sharding``: one mesh axis ``"data"`` over every device.

The batch (R, ...) is split along R across devices (``P("data")``); parameters, batch-norm
statistics and optimizer state are replicated (``P()``). The train step is an ordinary
``jax.jit`` with these shardings, so XLA (GSPMD) inserts the all-reduces: the gradient, the
batch-norm mean and variance, and the loss are all over the *global* batch, and an N-device
step computes the same numbers as a one-device step (up to float summation order).

Several hosts
-------------
Each host runs the *same* command; the only addition is one call before anything else touches
JAX::

    import jax
    jax.distributed.initialize()   # on TPU pods / SLURM / Kubernetes the arguments are found
                                   # automatically; elsewhere pass coordinator_address="host0:1234",
                                   # num_processes=N, process_id=i
    from jaxnets.train import train_and_evaluate
    train_and_evaluate(config, workdir)   # workdir on a filesystem every host can see

or, from the shell, on every host: ``jaxnets train CONFIG --workdir SHARED_DIR --distributed``
(``--distributed`` calls ``jax.distributed.initialize()`` before anything else).

* ``jax.devices()`` then lists the devices of *all* hosts and :func:`make_mesh` spans them, so
  ``config.batch_size`` is the **global** batch: it must be divisible by
  ``jax.device_count()`` (all hosts), and each process feeds ``batch_size / process_count``
  rows.
* Batches are a pure function of ``(seed, step)`` (the data source's ``batch_at_step``), so every
  process computes the same global batch and :func:`shard_batch` keeps only the rows of its own
  devices (:func:`process_rows`) and assembles the global array with
  ``jax.make_array_from_process_local_data``. A loader that reads only its own part should load
  rows ``process_rows(batch_size, mesh)`` of the global batch (with one device per host and the
  usual device order that is ``[i * R/P, (i+1) * R/P)`` for ``i = jax.process_index()``) and
  call ``jax.make_array_from_process_local_data(batch_sharding(mesh), local_rows, (R, ...))``.
* Checkpoints: every process calls the orbax manager (it coordinates the write), so the workdir
  must be shared storage (NFS, GCS). Only ``jax.process_index() == 0`` writes ``metrics.jsonl``,
  the plot and ``summary.json`` and shows the progress bar.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis ``"data"`` over ``devices`` (default: all devices of all processes)."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of parameters, batch-norm statistics, optimizer state, metrics: a full copy per device."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of a batch (R, ...): R split across the ``"data"`` axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
    """Raise ValueError unless the global batch splits evenly over the mesh's devices."""
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(
            f"{what}={batch_size} is not divisible by the {n} devices of the mesh; "
            f"choose a multiple of {n} (it is the global batch, split across devices)"
        )


@functools.lru_cache(maxsize=64)
def process_rows(global_batch_size: int, mesh: Mesh) -> slice:
    """The rows of a global batch that live on this process's devices (a contiguous slice)."""
    index_map = batch_sharding(mesh).addressable_devices_indices_map((global_batch_size,))
    starts = sorted({idx[0].indices(global_batch_size)[0] for idx in index_map.values()})
    stops = sorted({idx[0].indices(global_batch_size)[1] for idx in index_map.values()})
    rows = slice(starts[0], stops[-1])
    expected = global_batch_size * len(index_map) // mesh.devices.size
    if rows.stop - rows.start != expected:
        raise ValueError(
            "this process's devices do not hold a contiguous block of the batch; "
            "build the mesh with devices ordered by process (jax.devices() does)"
        )
    return rows


def shard_batch(batch, mesh: Mesh):
    """Global host arrays (R, ...) -> global ``jax.Array`` s sharded along R over the mesh.

    ``batch``: a dict (or tuple) of host arrays with the batch axis first; the same structure
    comes back. Every process passes the same global batch; each keeps its own rows.
    """
    sharding = batch_sharding(mesh)

    def put(a):
        a = np.asarray(a)
        rows = process_rows(a.shape[0], mesh)
        return jax.make_array_from_process_local_data(sharding, a[rows], a.shape)

    if isinstance(batch, dict):
        return {k: put(v) for k, v in batch.items()}
    return tuple(put(a) for a in batch)
