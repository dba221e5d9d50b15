"""Rollout workers acting on a GPU share (`policy.worker_gpu_share`): how many fit beside
the learners, where each acts, and the one-line errors when the GPUs or CUDA are missing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.actors import acting_device
from cluster.ray_loop import gpu_shares
from cluster.user_errors import UsageError

ROOT = Path(__file__).resolve().parents[2]


def test_the_workers_fit_beside_the_learners_or_the_run_stops_in_one_line(monkeypatch):
    import ray

    def free(**resources):
        monkeypatch.setattr(ray, "available_resources", lambda: resources)

    free(CPU=16.0, GPU=2.0)
    assert gpu_shares(8, 0.0, 1, 1) == (1, 0.0)  # the default: workers on CPUs, the learner as cpu_shares says
    assert gpu_shares(8, 0.0, 2, 0) == (0, 0.0)
    assert gpu_shares(8, 0.125, 1, 1) == (1, 0.125)  # 8 workers fill the GPU the learner leaves
    assert gpu_shares(3, 0.4, 1, 1) == (0.6, 0.4)  # 2 per GPU: 2 on one, 1 beside the learner, which keeps 0.6
    assert gpu_shares(9, 0.125, 1, 1) == (0.875, 0.125)  # 8 on one GPU, the 9th beside the learner
    with pytest.raises(UsageError, match=r"^policy.worker_gpu_share=0.125 puts 8 worker\(s\) on a GPU: 9 workers "
                                         r"need 2 GPU\(s\) and the 2 learners' own GPUs, and 2 are free: use fewer"):
        gpu_shares(9, 0.125, 2, 1)  # two learners never share: NCCL wants a GPU per rank
    free(CPU=16.0, GPU=1.0)  # one GPU node: the learner keeps what 15 workers leave of it
    assert gpu_shares(15, 0.0625, 1, 1) == (0.0625, 0.0625)
    with pytest.raises(UsageError, match=r"16 workers need 1 GPU\(s\) and a share left for the learner, and 1 are"):
        gpu_shares(16, 0.0625, 1, 1)
    free(CPU=16.0)
    with pytest.raises(UsageError, match=r"1 workers need 1 GPU\(s\) and a share left for the learner, and 0 are"):
        gpu_shares(1, 1.0, 1, 0)


def test_a_worker_acts_where_ray_placed_it():
    assert acting_device([], cuda_available=True) == "cpu"
    assert acting_device([0], cuda_available=True) == "cuda"  # Ray set CUDA_VISIBLE_DEVICES to its GPU
    with pytest.raises(RuntimeError, match=r"^this rollout worker was given GPU \[0\] but torch sees no CUDA device "
                                           r"\(a CPU build of torch\?\)"):
        acting_device([0], cuda_available=False)


SHARES = """
import ray, torch
from cluster.actors import acting_device
ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)

@ray.remote(num_cpus=0.5, num_gpus=0.5)
def place():
    ids = ray.get_gpu_ids()
    try:
        return ids, acting_device(ids, torch.cuda.is_available())
    except RuntimeError as e:
        return ids, str(e)

print(ray.get([place.remote(), place.remote()]))
"""


@pytest.mark.ray
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the behaviour of a CPU build of torch")
def test_two_half_shares_land_on_one_gpu_and_a_cpu_torch_says_so():
    proc = subprocess.run([sys.executable, "-c", SHARES], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    placed = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    assert [ids for ids, _ in placed] == [[0], [0]]  # both on halves of the one (logical) GPU
    assert all(where.startswith("this rollout worker was given GPU [0] but torch sees no CUDA") for _, where in placed)
