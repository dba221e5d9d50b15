"""The learner's data-parallel group: who else trains the same weights, and the
collectives between them.

One learner is `SOLO`, a group of one whose collectives return their input, so the
default path opens no process group and does no extra work. N learners are a
`TorchGroup`: N processes in one `torch.distributed` process group (NCCL on GPUs,
gloo on CPU). Every rank holds the whole batch of an update (rank 0 draws it from the
buffer, as one learner would, and broadcasts it) and trains on its contiguous share
(`shard`); each rank's loss is normalised by the *global* batch, so the sum of the
ranks' gradients (`sum_grads`, an all-reduce) is the gradient one learner computes on
the whole batch, and every rank then takes the same optimizer step. Batch statistics
and metrics are summed over the ranks through `gather`.

Plain torch, no Ray: the cluster's actor shells start the processes and hand each one
the rendezvous (`open_store` on rank 0, `connect_store` elsewhere).
"""

from __future__ import annotations

import datetime
from typing import Any, Sequence, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

T = TypeVar("T")
RENDEZVOUS_TIMEOUT = datetime.timedelta(minutes=10)
"""How long a rank waits for the others at the rendezvous (their actors may still be
loading the model)."""


def share_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rank `rank`'s contiguous share [lo, hi) of n items among `size` ranks: the shares
    cover the items once, in order, and their sizes differ by at most one."""
    return rank * n // size, (rank + 1) * n // size


class Group:
    """The learners training one set of weights; this base class is a group of one,
    whose collectives return their input (`TorchGroup` is N processes)."""

    rank, size = 0, 1

    def shard(self, items: Sequence[T]) -> Sequence[T]:
        """This rank's contiguous share of `items` (`share_bounds`)."""
        return items

    def bounds(self, n: int) -> tuple[int, int]:
        """[lo, hi) of this rank's share of n items."""
        return 0, n

    def broadcast(self, obj: T) -> T:
        return obj

    def gather(self, obj: T) -> list[T]:
        return [obj]

    def sum_tensor(self, tensor: Tensor) -> Tensor:
        return tensor

    def sum_grads(self, params: Sequence[torch.nn.Parameter]) -> None:
        pass


SOLO = Group()
"""One learner: no process group."""


def open_store(host: str) -> dist.TCPStore:
    """Rank 0's rendezvous: a TCP store on a free port of `host` (`store.port`)."""
    return dist.TCPStore(host, 0, is_master=True, wait_for_workers=False, timeout=RENDEZVOUS_TIMEOUT)


def connect_store(host: str, port: int) -> dist.TCPStore:
    """Another rank's connection to rank 0's store."""
    return dist.TCPStore(host, port, is_master=False, timeout=RENDEZVOUS_TIMEOUT)


class TorchGroup(Group):
    """This process as rank `rank` of `size` in a `torch.distributed` process group.

    Gradients and per-step tensors go through the backend of `device` (NCCL for CUDA,
    gloo for CPU); Python objects (batches, metrics) through a gloo group, as object
    collectives over NCCL would stage them on the GPU.
    """

    def __init__(self, rank: int, size: int, store: dist.Store, device: torch.device | str):
        if size < 2:
            raise ValueError(f"a TorchGroup has at least 2 ranks, got size {size} (one learner is SOLO)")
        self.rank, self.size = rank, size
        self.backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
        dist.init_process_group(self.backend, store=store, rank=rank, world_size=size, timeout=RENDEZVOUS_TIMEOUT)
        self.objects = dist.group.WORLD if self.backend == "gloo" else dist.new_group(backend="gloo")

    def bounds(self, n: int) -> tuple[int, int]:
        return share_bounds(n, self.rank, self.size)

    def shard(self, items: Sequence[T]) -> Sequence[T]:
        lo, hi = self.bounds(len(items))
        return items[lo:hi]

    def broadcast(self, obj: T) -> T:
        """Rank 0's `obj` on every rank."""
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.objects)
        return box[0]

    def gather(self, obj: T) -> list[T]:
        """Every rank's `obj`, in rank order, on every rank."""
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj, group=self.objects)
        return out

    def sum_tensor(self, tensor: Tensor) -> Tensor:
        """The element-wise sum over the ranks (in place)."""
        dist.all_reduce(tensor)
        return tensor

    def sum_grads(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Replace each parameter's gradient with the sum over the ranks, in one all-reduce.

        A rank with no gradient for a parameter adds zeros; a parameter no rank has a
        gradient for keeps `grad = None`, so the optimizer skips it as one learner's would.
        """
        if not params:
            return
        ref = params[0]
        parts = [p.grad.reshape(-1) if p.grad is not None else ref.new_zeros(p.numel()) for p in params]
        present = torch.tensor([p.grad is not None for p in params], dtype=ref.dtype, device=ref.device)
        flat = self.sum_tensor(torch.cat([*parts, present]))  # (sum numel + P,)
        grads = flat[: -len(params)].split([p.numel() for p in params])
        for p, g, seen in zip(params, grads, flat[-len(params):].tolist()):
            p.grad = g.view_as(p) if seen else None

    def close(self) -> None:
        dist.destroy_process_group()


def sum_values(group: Group, values: dict[str, float]) -> dict[str, float]:
    """`values` summed over the ranks, key by key (a key missing on a rank counts 0),
    in rank order so every rank gets the same floats; a group of one returns its own."""
    parts = group.gather(values)
    if len(parts) == 1:
        return dict(values)
    out: dict[str, float] = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out[k] + v if k in out else v
    return out
