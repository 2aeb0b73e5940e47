"""The executor of long campaigns (``mxugen explore``'s sweeps, ``mxugen bench soak``): a Dask
cluster, by default a local one on this machine's cores with no set-up, or a user's own at an
address (docs/explore.md says why Dask)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ToolchainError


@contextmanager
def dask_client(jobs: int, address: str | None = None) -> Iterator:
    """A Dask client of the cluster at ``address`` (or at Dask's ``scheduler-address``
    setting, which the ``DASK_SCHEDULER_ADDRESS`` variable sets), else of a local cluster of
    ``jobs`` single-threaded worker processes, which is stopped on the way out."""
    import dask
    from distributed import Client, LocalCluster
    address = address or dask.config.get("scheduler-address", None)
    if address:
        try:
            client = Client(address)
        except (OSError, ValueError) as exc:
            raise ToolchainError(f"cannot reach the Dask scheduler at {address} ({exc}); check "
                                 "--address or DASK_SCHEDULER_ADDRESS") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(jobs)  # so that worker_count sees them all
        yield client


def worker_count(client) -> int:
    """The workers a client's cluster has (at least one)."""
    return max(1, len(client.scheduler_info()["workers"]))
