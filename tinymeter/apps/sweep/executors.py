"""Where candidate jobs run: a spawned process pool (TF is not fork-safe), in-process
``serial``, or a Dask cluster (``dask://HOST:PORT``, imported only then)."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from tinymeter.apps.sweep.worker import CandidateJob, CandidateResult
from tinymeter.core.errors import ConfigError

log = logging.getLogger(__name__)


def _worker_init(threads: int) -> None:
    """Spawned-worker setup: quiet TF, and few threads each (workers share the cores).

    Environment variables rather than ``tf.config.threading``: TF reads them when its
    runtime starts, and the worker does not pay for importing TF before a job needs it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(var, str(threads))


Evaluate = Callable[[CandidateJob], CandidateResult]


def parse_executor(spec: str) -> tuple[str, str | None]:
    """("process", None), ("serial", None) or ("dask", "tcp://HOST:PORT") from a CLI spec."""
    if spec in ("process", "local"):
        return "process", None
    if spec == "serial":
        return "serial", None
    if spec.startswith("dask://"):
        address = spec[len("dask://"):]
        if not address or ":" not in address:
            raise ConfigError(f"executor {spec!r} must look like dask://HOST:PORT")
        return "dask", f"tcp://{address}"
    raise ConfigError(f"unknown executor {spec!r}; use 'process' (default), 'serial' or dask://HOST:PORT")


def _import_dask() -> Any:
    try:
        import dask.distributed as dd
    except ImportError:
        raise ConfigError("the dask executor needs dask.distributed, which is not installed; "
                          "install it with `pip install 'dask[distributed]'` (here and on the workers)"
                          ) from None
    return dd


def _run_jobs(jobs: Sequence[CandidateJob], evaluate: Evaluate, executor: str,
              workers: int) -> Generator[tuple[CandidateJob, CandidateResult | BaseException]]:
    """Yield (job, result or exception) as jobs finish, on the chosen executor.

    A generator so the caller commits each result before the next arrives; closing
    it early (interrupt) cancels whatever has not started.
    """
    kind, address = parse_executor(executor)
    if kind == "serial" or not jobs:
        for job in jobs:
            try:
                yield job, evaluate(job)
            except Exception as exc:
                yield job, exc
        return
    if kind == "process":
        threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(threads,))
        futures: dict[Future[CandidateResult], CandidateJob] = {}
        try:
            futures = {pool.submit(evaluate, job): job for job in jobs}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    failure = fut.exception()
                    yield futures[fut], (failure if failure is not None else fut.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    dd = _import_dask()
    try:
        client = dd.Client(address, timeout="20s")
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        dfuts = {client.submit(evaluate, job, key=f"tinymeter-nas-{job.key[:16]}", pure=False): job
                 for job in jobs}
        try:
            for fut in dd.as_completed(list(dfuts)):
                try:
                    yield dfuts[fut], fut.result()
                except Exception as exc:
                    yield dfuts[fut], exc
        finally:
            client.cancel(list(dfuts))
    finally:
        client.close()
