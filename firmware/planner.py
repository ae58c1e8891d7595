"""Tensor arena planning: give every activation tensor an offset in one byte arena.

Mirrors the idea of TFLM's GreedyMemoryPlanner (largest buffers first, each placed
at the lowest offset that does not collide with a buffer alive at the same time),
so the peak arena size it reports is comparable to TFLM's ``arena_used_bytes`` for
the tensors themselves. Pure logic: no model types, just lifetimes and sizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinymeter.models.tflite import Subgraph

ALIGNMENT = 16


@dataclass(frozen=True)
class BufferRequest:
    """A tensor that needs arena space from op ``first`` to op ``last`` inclusive."""

    tensor: int
    size: int
    first: int
    last: int


@dataclass(frozen=True)
class ArenaPlan:
    """Offsets per tensor and the arena size they need."""

    offsets: dict[int, int]
    size: int


def align(n: int, alignment: int = ALIGNMENT) -> int:
    return (n + alignment - 1) // alignment * alignment


def plan(requests: Sequence[BufferRequest], alignment: int = ALIGNMENT) -> ArenaPlan:
    """Greedy-by-size placement of buffers with lifetimes into a minimal arena."""
    order = sorted(requests, key=lambda r: (-r.size, r.first, r.tensor))
    placed: list[tuple[int, int, BufferRequest]] = []  # (offset, end, request)
    offsets: dict[int, int] = {}
    for req in order:
        live = sorted((off, end) for off, end, other in placed
                      if other.first <= req.last and req.first <= other.last)
        candidate = 0
        for off, end in live:
            if candidate + req.size <= off:
                break
            candidate = max(candidate, align(end, alignment))
        offsets[req.tensor] = candidate
        placed.append((candidate, candidate + req.size, req))
    size = align(max((end for _, end, _ in placed), default=0), alignment)
    return ArenaPlan(offsets, size)


def lifetimes(subgraph: Subgraph, ops: Iterable[int] | None = None) -> list[BufferRequest]:
    """Arena requests for the non-constant tensors of *subgraph*.

    Graph inputs live from the start, graph outputs to the end, variable tensors for
    the whole run; intermediate tensors from their producer to their last consumer.
    """
    op_indices = list(ops) if ops is not None else list(range(len(subgraph.operators)))
    n_ops = len(op_indices)
    first: dict[int, int] = {}
    last: dict[int, int] = {}

    def touch(t: int, step: int) -> None:
        if t < 0 or subgraph.tensors[t].data is not None:
            return
        first[t] = min(first.get(t, step), step)
        last[t] = max(last.get(t, step), step)

    for t in subgraph.inputs:
        touch(t, 0)
    for step, op_index in enumerate(op_indices):
        op = subgraph.operators[op_index]
        for t in (*op.inputs, *op.outputs):
            touch(t, step)
    for t in subgraph.outputs:
        touch(t, max(n_ops - 1, 0))
    requests = []
    for t in first:
        tensor = subgraph.tensors[t]
        lo, hi = first[t], last[t]
        if tensor.is_variable:
            lo, hi = 0, max(n_ops - 1, 0)
        nbytes = tensor_bytes(subgraph, t)
        requests.append(BufferRequest(t, nbytes, lo, hi))
    return requests


def tensor_bytes(subgraph: Subgraph, index: int) -> int:
    """Bytes of tensor *index* (product of its shape times its element size)."""
    t = subgraph.tensors[index]
    n = 1
    for d in t.shape:
        n *= max(int(d), 1)
    return n * t.dtype.itemsize
