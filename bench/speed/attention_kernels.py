"""The encoders' attention kernels on a GPU as shipped (`policies.architectures.GPU_ATTENTION`,
no cuDNN) against torch's own choice on a Hopper GPU (cuDNN's first), for bench/gpu_check.py.

cuDNN's attention builds a graph for every new input shape, and the policy's shapes change
with every batch; the arms time act calls on shapes new to the process and the same calls
again, and DPO updates of the real `Learner` (gpu.yaml). On a CPU the arms run too (the
flags do not touch CPU kernels), which only tests the code.
"""

from __future__ import annotations

import time

import learner_updates
from common import batch, spread, sync
from torch.nn.attention import SDPBackend, sdpa_kernel

import policies.architectures as architectures
from cluster.config import CONFIG_DIR, load_config


def cudnn_first(device):
    """Torch's choice on a Hopper GPU, where it prefers cuDNN's attention."""
    return sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                        SDPBackend.MATH], set_priority=True)



def timed_acts(policy, device: str, calls) -> list[float]:
    times = []
    for states, cands in calls:
        sync(device)
        t0 = time.perf_counter()
        policy.act(states, cands)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def arms(policy, checkpoint: str, device: str, act_envs, act_calls: int, pairs_per_update: int, updates: int,
         pairs, trajs) -> dict:
    """Per arm, seconds per act call of the largest batch on new shapes and on the same calls
    again (the action cache also helps there), and seconds per DPO update from the first.
    The cuDNN arm runs last, on shapes its graph cache has not seen."""
    scope = load_config(CONFIG_DIR / "gpu.yaml").dpo.scope
    n, shipped = max(act_envs), architectures.attention_kernels
    out = {}
    for arm, kernels in (("shipped", shipped), ("cudnn first", cudnn_first)):
        architectures.attention_kernels = kernels
        try:
            fresh = [batch(7_000_000 + 1000 * len(out) + r, n) for r in range(act_calls)]  # 12 candidates each
            new, again = timed_acts(policy, device, fresh), timed_acts(policy, device, fresh)
            learner = learner_updates.build(checkpoint, device, "full", "dpo", scope,
                                            {"dpo": {"pairs_per_update": pairs_per_update}})
            secs, _ = learner_updates.time_updates(learner, "dpo", pairs, trajs, 0, updates, device)
            del learner
        finally:
            architectures.attention_kernels = shipped
        out[arm] = {"act_new_shapes_s": new, "act_repeated_shapes_s": again, "dpo_s_per_update": secs}
        print(f"    attention {arm:11s}: act {n} envs, s/call on new shapes {spread(new)}, repeated {spread(again)};"
              f" DPO s/update {spread(secs)} (from the first update)", flush=True)
    return out
