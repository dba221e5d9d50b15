"""Run metrics: a JSONL log and TensorBoard scalars, written as they happen."""

from __future__ import annotations

import json
import time
from pathlib import Path


class MetricsLog:
    """Appends `{"tag", "step", "time", **values}` lines to `metrics.jsonl` and
    writes numeric values as TensorBoard scalars under `tb/`."""

    def __init__(self, run_dir: str | Path):
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / "metrics.jsonl"
        self.start = time.time()
        self.tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def write(self, tag: str, values: dict, step: int) -> None:
        row = {"tag": tag, "step": step, "time": time.time(), "wall_s": time.time() - self.start}
        row.update({k: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) or v is None})
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.tb.add_scalar(f"{tag}/{k}", v, global_step=step)
        self.tb.flush()

    def close(self) -> None:
        self.tb.close()
