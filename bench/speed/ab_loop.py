"""The RL loop of this tree against another revision's, side by side in one run.

    python bench/speed/ab_loop.py --il-checkpoint RUN/il/checkpoint [--baseline f89e9b1] [--updates 60]
                                  [--repeats 2] [--num-workers 1] [--baseline-il-checkpoint OLD/il/checkpoint]
    ATEN_CPU_CAPABILITY=avx2 python bench/speed/ab_loop.py ...     # the AVX2 fp32 path on a newer CPU

Each repeat runs `webshop-rl train --algo dpo --il-checkpoint ... --updates N` once with the
baseline revision (checked out with `git worktree` into a temporary folder) and once with
this tree, alternating, so that other work on the machine slows both alike. Every run, the
baseline's too, starts with an empty folder of shared encodings (a first run on the
machine); with `--warm` this tree runs once more with the folder its run left (a later run). Periodic
evaluations and checkpoints are pushed past the budget; the final test is 20 goals.
Prints learner updates/s and env steps/s over the RL phase (median [min-max]) and each
variant's ratio to the baseline.

The baseline starts from `--baseline-il-checkpoint` where given (each tree's own shipped
model: the CPU preset keeps 2 of MiniLM-L6's layers since 2026-12-04, all 6 before), else
from the same IL checkpoint as this tree.

Both trees act and learn in the precision stored in a copy of the IL checkpoint:
`--precision` (default fp32 below AVX-512 kernels, else auto). Older revisions decide
bf16 from the CPU's flags, not from the kernels torch runs, and their rollout workers
build their policy from the preset, not from the checkpoint: under
`ATEN_CPU_CAPABILITY=avx2` on a CPU with AVX512-BF16 they would act in bf16 on oneDNN's
native bf16 kernels, where an AVX2 laptop runs fp32. With fp32, every process of the
baseline therefore reads /proc/cpuinfo without its bf16 flags (`HIDE_BF16`, loaded as
`sitecustomize` through PYTHONPATH), as on an AVX2 CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


HIDE_BF16 = """
import builtins, io
_open = builtins.open
def _open_cpuinfo(file, *a, **k):
    if file == "/proc/cpuinfo":
        text = _open(file, *a, **k).read()
        for flag in (" amx_bf16", " avx512_bf16"):
            text = text.replace(flag, "")
        return io.StringIO(text)
    return _open(file, *a, **k)
builtins.open = _open_cpuinfo
"""


def tree_env(tree: Path, cache: Path, site: Path | None = None) -> dict:
    """The environment of a process of `tree`: its packages first (after `site`, see
    `baseline_checkout`) and a cache folder of its own."""
    path = f"{site}{os.pathsep}{tree}" if site else str(tree)
    return {**os.environ, "PYTHONPATH": path, "WEBSHOP_RL_CACHE": str(cache)}


def run_train(tree: Path, il: str, out: Path, cache: Path, args, site: Path | None = None) -> dict:
    """One RL phase in `tree` from the IL checkpoint `il`; its summary (updates, env steps, RL seconds)."""
    cmd = [sys.executable, "-m", "cluster.train", "--algo", "dpo", "--il-checkpoint", il,
           "--updates", str(args.updates), "--num-workers", str(args.num_workers), "--out", str(out),
           "--set", "run.eval_interval_s=10h", "run.checkpoint_interval_s=10h", "run.time_budget_s=10h",
           "run.final_eval_episodes=20"]
    env = tree_env(tree, cache, site)
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary = json.loads((out / "summary.json").read_text())
    return {"updates/s": summary["updates"] / summary["seconds"], "env steps/s": summary["env_steps"] / summary["seconds"]}


def pinned_checkpoint(source: str, precision: str, copy: Path) -> str:
    """A copy (at `copy`) of the IL checkpoint whose stored policy precision is `precision`."""
    shutil.copytree(source, copy)
    config = json.loads((copy / "config.json").read_text())
    config["policy"]["precision"] = precision
    (copy / "config.json").write_text(json.dumps(config, indent=2))
    return str(copy)


@contextlib.contextmanager
def baseline_checkout(revision: str, precision: str, tmp: Path):
    """(tree, site) of `revision` checked out under `tmp` for the time of the block; `site`
    (PYTHONPATH ahead of the tree) hides the bf16 CPU flags when comparing in fp32, else None."""
    base, site = tmp / "baseline", None
    if precision == "fp32":
        site = tmp / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(HIDE_BF16)
    subprocess.run(["git", "worktree", "add", "--detach", str(base), revision], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield base, site
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--il-checkpoint", required=True)
    ap.add_argument("--baseline-il-checkpoint", help="the baseline's IL checkpoint (default: --il-checkpoint)")
    ap.add_argument("--baseline", default="f89e9b1", help="git revision to compare with")
    ap.add_argument("--updates", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--num-workers", type=int, default=1)
    ap.add_argument("--warm", action="store_true", help="also run this tree with the folder of encodings left")
    ap.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                    help="stored in the IL checkpoint copy both trees use (default: fp32 below AVX-512, else auto)")
    args = ap.parse_args()
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    args.precision = args.precision or ("auto" if capability.startswith("AVX512") else "fp32")
    print(f"CPU capability {capability}; precision {args.precision}; baseline {args.baseline}; "
          f"{args.updates} DPO updates, {args.num_workers} worker(s), {args.repeats} repeats")
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        il = pinned_checkpoint(str(Path(args.il_checkpoint).resolve()), args.precision, tmp / "il")
        base_il = pinned_checkpoint(str(Path(args.baseline_il_checkpoint or args.il_checkpoint).resolve()),
                                    args.precision, tmp / "base_il")
        with baseline_checkout(args.baseline, args.precision, tmp) as (base, site):
            catalog_cache = tmp / "catalogs"  # shared: the generated catalog is built once

            def empty_cache(name: str) -> Path:
                """A cache folder with the built catalog and no encodings (a first run on the
                machine); the very first run builds the catalog in `catalog_cache` itself."""
                if not (catalog_cache / "catalogs").exists():
                    return catalog_cache
                (tmp / name).mkdir()
                os.symlink(catalog_cache / "catalogs", tmp / name / "catalogs")
                return tmp / name

            for r in range(args.repeats):
                results.setdefault("baseline", []).append(
                    run_train(base, base_il, tmp / f"b{r}", empty_cache(f"bcache{r}"), args, site))
                fresh = empty_cache(f"cache{r}")
                results.setdefault("this tree, first run", []).append(run_train(ROOT, il, tmp / f"n{r}", fresh, args))
                if args.warm:
                    results.setdefault("this tree, later run", []).append(
                        run_train(ROOT, il, tmp / f"w{r}", fresh, args))
                print(f"repeat {r + 1}: " + "; ".join(f"{k} {v[-1]['updates/s']:.3f} updates/s "
                                                      f"{v[-1]['env steps/s']:.1f} steps/s" for k, v in results.items()))
    print()
    for metric in ("updates/s", "env steps/s"):
        base_median = statistics.median(r[metric] for r in results["baseline"])
        for name, rows in results.items():
            values = [r[metric] for r in rows]
            med = statistics.median(values)
            print(f"{metric:<12} {name:<22} {med:7.3f} [{min(values):.3f}-{max(values):.3f}]  x{med / base_median:.2f}")


if __name__ == "__main__":
    main()
