"""IL's first epoch of this tree against another revision's, side by side in one run.

    python bench/speed/ab_il.py [--baseline f89e9b1] [--demos 1000] [--repeats 1] [--warm]
    ATEN_CPU_CAPABILITY=avx2 python bench/speed/ab_il.py ...     # the AVX2 fp32 path on a newer CPU

Each repeat runs `webshop-rl train --algo il` with one epoch on `--demos` generated expert
demonstrations, once in the baseline revision (a `git worktree`) and once in this tree with
an empty folder of shared encodings (a first run on the machine), and with `--warm` again
with the folder that run left (a later run). Both trees compute in fp32 on the fp32 path: the
baseline decides bf16 from the CPU's flags, so its process reads /proc/cpuinfo without the
bf16 ones there (ab_loop's `HIDE_BF16`). Prints the epoch's seconds, the seconds this tree
spends encoding the demonstrations' frozen parts before it (`prefill`; the baseline has
none), their sum per tree, and each variant's ratio to the baseline (median [min-max]).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ab_loop import ROOT, baseline_checkout, tree_env


def run_il(tree: Path, out: Path, cache: Path, demos: int, site: Path | None) -> dict:
    cmd = [sys.executable, "-m", "cluster.train", "--algo", "il", "--out", str(out),
           "--set", "il.epochs=1", f"il.num_demos={demos}", "run.final_eval_episodes=10"]
    env = tree_env(tree, cache, site)
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = json.loads((out / "il" / "il_metrics.json").read_text())
    epoch, prefill = metrics["epochs"][0]["seconds"], metrics.get("prefill_seconds", 0.0)
    return {"epoch": epoch, "prefill": prefill, "total": epoch + prefill, "batches": metrics["epochs"][0]["batches"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="f89e9b1", help="git revision to compare with")
    ap.add_argument("--demos", type=int, default=1000, help="generated expert demonstrations (the job uses 3,000)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--warm", action="store_true", help="also run this tree with the folder of encodings left")
    args = ap.parse_args()
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    precision = "auto" if capability.startswith("AVX512") else "fp32"
    print(f"CPU capability {capability}; {precision}; baseline {args.baseline}; one IL epoch on {args.demos} "
          f"demonstrations; {args.repeats} repeat(s)")
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with baseline_checkout(args.baseline, precision, tmp) as (base, site):
            for r in range(args.repeats):
                rows.setdefault("baseline", []).append(run_il(base, tmp / f"b{r}", tmp / f"cb{r}", args.demos, site))
                fresh = tmp / f"cn{r}"
                rows.setdefault("this tree, first run", []).append(run_il(ROOT, tmp / f"n{r}", fresh, args.demos, None))
                if args.warm:
                    rows.setdefault("this tree, later run", []).append(run_il(ROOT, tmp / f"w{r}", fresh, args.demos,
                                                                            None))
                print(f"repeat {r + 1}: " + "; ".join(f"{k} {v[-1]['total']:.0f} s" for k, v in rows.items()),
                      flush=True)
    base = statistics.median(r["total"] for r in rows["baseline"])
    print(f"\n{'':<22} {'epoch s':>8} {'prefill s':>10} {'sum s [min-max]':>18}  baseline sum / sum; "
          f"{rows['baseline'][0]['batches']} batches")
    for name, data in rows.items():
        total = [d["total"] for d in data]
        med = statistics.median(total)
        print(f"{name:<22} {statistics.median(d['epoch'] for d in data):>8.1f} "
              f"{statistics.median(d['prefill'] for d in data):>10.1f} {med:>8.1f} [{min(total):.0f}-{max(total):.0f}]"
              f"  x{base / med:.2f}")


if __name__ == "__main__":
    main()
