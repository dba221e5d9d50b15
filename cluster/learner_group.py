"""The learner group on Ray: `learner.num_learners` learner actors training one set of
weights, as one `torch.distributed` process group (`learner.group`).

The N actors are the bundles of one placement group (strategy PACK: on one node where
they fit, so their all-reduce stays inside a node, and over nodes where they do not,
e.g. one GPU on each of two learner nodes). Rank 0 opens a TCP store on its node and
the others meet it there (`LearnerShell.open_store` / `join`); each process then runs
NCCL on its GPU or gloo on CPU. Rank 0 reads the buffer, publishes the weights and
snapshots the checkpoint generation; the driver runs `train_for` on every rank at once.

One learner (the default) is one actor: no placement group, no process group.
"""

from __future__ import annotations

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from cluster.actors import RemoteLearner

SCHEDULE_TIMEOUT_S = 600


class LearnerGroup:
    """The learner actors of a run, rank 0 first.

    Args:
        cfg: the run's `TrainConfig` (`learner.num_learners` actors).
        cpus, gpus: what each learner reserves (gpus: 0, 1, or the share of a GPU that the
            rollout workers leave; > 0 puts its model on CUDA).
        options: the rest of each actor's `.options` (runtime env).
        args: `LearnerShell`'s arguments after cfg, il_path and device.
    """

    def __init__(self, cfg, il_path: str, cpus: float, gpus: float, options: dict, *args):
        n = cfg.learner.num_learners
        self.pg = None
        placement: list[dict] = [{}]
        if n > 1:
            bundle = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
            self.pg = placement_group([bundle] * n, strategy="PACK")
            try:
                ray.get(self.pg.ready(), timeout=SCHEDULE_TIMEOUT_S)
            except ray.exceptions.GetTimeoutError:
                remove_placement_group(self.pg)
                raise RuntimeError(f"{n} learners not placed after {SCHEDULE_TIMEOUT_S} s: each asks for {bundle}; "
                                   f"free now: {ray.available_resources()}") from None
            placement = [{"scheduling_strategy": PlacementGroupSchedulingStrategy(self.pg, i)} for i in range(n)]
        device = "cuda" if gpus else "cpu"
        self.ranks = [RemoteLearner.options(num_cpus=cpus, num_gpus=gpus, **options, **placement[i]).remote(
            cfg, il_path, device, *args, rank=i) for i in range(n)]
        if n > 1:
            host, port = ray.get(self.ranks[0].open_store.remote())
            ray.get([r.join.remote(host, port, n) for r in self.ranks], timeout=SCHEDULE_TIMEOUT_S)

    @property
    def leader(self):
        """Rank 0: it publishes, snapshots and counts the updates."""
        return self.ranks[0]

    def train_for(self, seconds: float, max_updates: int | None) -> dict:
        """`train_for` on every rank at once: {call: rank}."""
        return {r.train_for.remote(seconds, max_updates): i for i, r in enumerate(self.ranks)}

    def placement(self) -> dict:
        """Where rank 0 runs (device, GPU ids, node), and with several learners every rank's."""
        places = ray.get([r.placement.remote() for r in self.ranks])
        if len(places) == 1:
            return places[0]
        return {**places[0], "num_learners": len(places), "ranks": places}

    def kill(self) -> None:
        for actor in self.ranks:
            ray.kill(actor, no_restart=True)
        if self.pg is not None:
            remove_placement_group(self.pg)
            self.pg = None
