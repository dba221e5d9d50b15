"""The package layout's rules, measured from the source: what a reviewer can repeat.

Reads every import (module level and inside functions) of the five packages with
`ast` and prints:
  - imports that run against the order envs -> policies -> rollout_workers -> learner -> cluster;
  - import circles between modules (strongly connected components of the module graph);
  - files that import Ray outside cluster/;
  - Python files over 400 lines (package code, tests and bench).
Exits 1 when any list is non-empty. `tests/test_layout.py` runs the same checks.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORDER = ("envs", "policies", "rollout_workers", "learner", "cluster")
MAX_LINES = 400


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for pkg in ORDER for p in (root / pkg).rglob("*.py"))


def imports_of(path: Path) -> list[str]:
    """Every module name this file imports (absolute names; relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module_name(path).split(".")
                base = ".".join(here[: len(here) - node.level + (path.name == "__init__.py")] + [base]).strip(".")
            names.append(base)
            names += [f"{base}.{a.name}" for a in node.names]  # `from pkg import module`
    return names


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    files = package_files(root)
    known = {module_name(p, root) for p in files}
    return {module_name(p, root): {n for n in imports_of(p) if n in known and n != module_name(p, root)}
            for p in files}


def order_violations(g: dict[str, set[str]]) -> list[str]:
    rank = {name: i for i, name in enumerate(ORDER)}
    return [f"{m} imports {t}" for m, targets in sorted(g.items()) for t in sorted(targets)
            if rank[t.split(".")[0]] > rank[m.split(".")[0]]]


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def ray_outside_cluster(root: Path = ROOT) -> list[str]:
    return [str(p.relative_to(root)) for p in package_files(root)
            if not p.relative_to(root).parts[0] == "cluster"
            and any(n == "ray" or n.startswith("ray.") for n in imports_of(p))]


def long_files(root: Path = ROOT) -> list[str]:
    files = package_files(root) + sorted((root / "tests").rglob("*.py")) + sorted((root / "bench").rglob("*.py"))
    return [f"{p.relative_to(root)} ({n} lines)" for p in files
            if (n := len(p.read_text().splitlines())) > MAX_LINES]


def main() -> int:
    g = graph()
    checks = {"imports against the package order": order_violations(g),
              "import circles": [" <-> ".join(c) for c in circles(g)],
              "Ray imported outside cluster/": ray_outside_cluster(),
              f"Python files over {MAX_LINES} lines": long_files()}
    print(f"{len(g)} modules, {sum(len(t) for t in g.values())} project imports")
    for title, found in checks.items():
        print(f"{title}: {len(found)}")
        for line in found:
            print(f"  {line}")
    return 1 if any(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
