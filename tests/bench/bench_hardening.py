"""Benchmark: the cost of issue 10's hardening, the code before it next to today's, in one run.

    SEEDBED_TEST_PG_URL=postgresql://… .venv/bin/python -m tests.bench.bench_hardening \
        [--baseline 364d860] [--after REF] [--runtimes runc,runsc] [--before-runsc runsc] \
        [--rounds 2] [--repeat 10] [--burst 50] [--slots 4] [--rows 20000]

Takes about 6 minutes with the defaults on 2 cores (a round of four children, one per side and
runtime, takes under 3; the first run also builds the baseline's sandbox image, outside the
timings). Not in `./scripts/bench`'s default list: run `./scripts/bench hardening`.

Figures, for each runtime (runc, and gVisor's runsc when the engine has it registered — see
`scripts/runsc-up`): RunScenario → first log line and → completion (medians over `--repeat` runs of
a trivial script, after a warm-up run), `--burst` trivial runs submitted at once (runs/s), and
seeding (the shop's customers generated and inserted into PostgreSQL, rows/s, inside the run as the
coordinator records it and from RunScenario to completion). Each is measured for the baseline ref
(BEFORE: default `364d860`, the last commit before the hardening) and for this checkout as it is,
uncommitted changes included, or `--after REF` (AFTER), `--rounds` times with the order of the two
sides alternated. The table shows the median of the rounds for both sides, after/before, and the
cost: how many times slower AFTER is, whichever way the figure points.

How a ref is measured: `git worktree add --detach` of it into a temporary folder (removed at the
end); each (tree, runtime) pair is a subprocess running `_hardening_child.py` with
`PYTHONPATH=<tree>/proto:<tree>/coordinator:<tree>/worker:<tree>/client:<tree>` and the tree as
working directory. PYTHONPATH comes before the editable install's `.pth` entries, so the child, the
Ray workers its local `ray.init` starts (they inherit its environment) and the sandbox image (found
relative to the worker package) are all that tree's; the child reports where its Ray workers import
the sandbox driver from, the parent checks it lies in the tree, and the table prints it. Both trees
use this virtual environment's third-party packages.

The runtime: a tree with the `sandbox_runtime` setting gets it. A tree without it (the baseline:
it uses runsc whenever the engine has it, else the default runtime) is pinned by a harness-only
shim: a `sitecustomize.py` in a temporary folder first on PYTHONPATH, which Python runs at the start
of every process (Ray's workers included, where the sandbox driver lives). When
`SEEDBED_BENCH_PIN_RUNTIME` is set, it wraps `DockerSandboxDriver.client` of the module as it is
imported so that the runtime the driver chose is replaced with the one asked for; unset, it does
nothing. Every child checks the pin by a run that prints the kernel version its script sees (gVisor
reports 4.4.0) and fails if it is not the runtime asked for.

gVisor's registration is part of the hardening too: `scripts/runsc-up` registers runsc with
`--oci-seccomp`, so that gVisor enforces the sandbox's seccomp profile. The code before the
hardening passes no profile (Docker's default applies), and gVisor's enforcement answers EPERM where
that profile asks for ENOSYS on clone3, so no thread starts and every run of the BEFORE side fails
under such a runsc. To measure it as it ran then, register gVisor a second time without the flag
(`"runsc-plain": {"path": <runsc's path>, "runtimeArgs": ["--network=none"]}` in the engine's
daemon.json, then SIGHUP dockerd) and pass `--before-runsc runsc-plain`; the table's notes show
how each side's runtime is registered. A failed (tree, runtime) pair is reported and the others
are still measured.

Rejected: running each tree's own `bench_runs`/`bench_seed` (the baseline's modules cannot get a
machine-readable output or a runtime option); patching the driver in the child process (the driver
runs in Ray's worker processes, which a patch there does not reach); a second virtual environment
per tree (minutes of installs to vary only Seedbed's own code).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import psycopg

from tests.bench._postgres import scratch_database

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).resolve().with_name("_hardening_child.py")
BASELINE = "364d860"
CHILD_TIMEOUT_SECONDS = 1800

# Harness-only: pins the sandbox runtime of a tree that predates the `sandbox_runtime` setting.
SHIM = '''\
"""Benchmark harness shim (bench_hardening): pins the runtime of a Seedbed tree without the setting."""
import importlib.abc
import importlib.machinery
import os
import sys

_TARGET = "seedbed.worker.sandbox"
_VARIABLE = "SEEDBED_BENCH_PIN_RUNTIME"


def _patch(module):
    driver = module.DockerSandboxDriver
    original = driver.client

    def client(self):
        engine = original(self)
        pin = os.environ.get(_VARIABLE, "")
        if pin:
            if not hasattr(self, "_runtime"):
                raise RuntimeError("bench shim: DockerSandboxDriver has no _runtime to pin")
            self._runtime = None if pin == "runc" else pin
        return engine

    driver.client = client


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())
'''


@dataclass(frozen=True)
class Side:
    label: str  # "before" or "after"
    tree: Path


@contextlib.contextmanager
def ref_tree(ref: str) -> Iterator[Path]:
    """A detached worktree of `ref` in a temporary folder, removed afterwards."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"{ref!r} is not a commit of this git checkout ({exc})") from exc
    with tempfile.TemporaryDirectory(prefix="seedbed-bench-tree-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), commit],
            check=True,
        )
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
            subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)


def available_runtimes(wanted: list[str], before_runsc: str) -> tuple[list[str], list[str]]:
    """The runtimes that can be measured, and a line per gVisor runtime telling how it is registered."""
    registered = docker.from_env().info().get("Runtimes") or {}
    if "runsc" not in wanted:
        return wanted, []
    missing = sorted({"runsc", before_runsc} - set(registered))
    if missing:
        print(
            f"runsc is not available ({', '.join(missing)} not registered with the Docker engine; "
            "see scripts/runsc-up): runc only"
        )
        return [r for r in wanted if r != "runsc"], []
    notes = []
    for side, name in (("before", before_runsc), ("after", "runsc")):
        entry = registered[name]
        command = " ".join([str(entry.get("path", name)), *map(str, entry.get("runtimeArgs") or [])])
        notes.append(f"runsc {side}: the engine's {name!r} = {command}")
    return wanted, notes


# Why a tree from before the hardening fails under gVisor registered with --oci-seccomp.
OCI_SECCOMP_HINT = (
    "hint: the engine's runsc enforces seccomp profiles (--oci-seccomp), and the code before the "
    "hardening passes none, so Docker's default profile applies; gVisor answers EPERM where it asks "
    "for ENOSYS on clone3, so no thread can start. Register gVisor without --oci-seccomp under another "
    "name (as runsc was before the hardening) and pass it as --before-runsc NAME"
)


class ChildFailed(Exception):
    """One (tree, runtime) could not be measured; the others still are."""


def run_child(command: list[str], tree: Path, env: dict[str, str], log: Path) -> int | str:
    """Run the child in its own process group (its Ray processes included); exit code or 'timeout'."""
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command, cwd=tree, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return proc.wait(timeout=CHILD_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return f"timeout after {CHILD_TIMEOUT_SECONDS}s"


def measure(side: Side, runtime: str, shim_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run the child for one tree and runtime on a fresh database; its JSON result."""
    tree = side.tree
    folders = [shim_dir, tree / "proto", tree / "coordinator", tree / "worker", tree / "client", tree]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(f) for f in folders)}
    for name in ("SEEDBED_SANDBOX_RUNTIME", "SEEDBED_BENCH_PIN_RUNTIME", "RAY_ADDRESS"):
        env.pop(name, None)
    ddl = (tree / "examples" / "shop" / "schema.sql").read_text().split(";")[0]
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(ddl)
        out, log = Path(tmp) / "result.json", Path(tmp) / "child.log"
        engine_runtime = args.before_runsc if side.label == "before" and runtime == "runsc" else runtime
        command = [sys.executable, str(CHILD), "--runtime", runtime, "--engine-runtime", engine_runtime]
        command += ["--out", str(out), "--pg-url", url]
        for option in ("repeat", "burst", "slots", "rows"):
            command += [f"--{option}", str(getattr(args, option))]
        started = time.monotonic()
        code = run_child(command, tree, env, log)
        if code != 0 or not out.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise ChildFailed(f"{side.label}/{runtime}: the child failed ({code or 'no result'}):\n{tail}")
        result: dict[str, Any] = json.loads(out.read_text())
        with psycopg.connect(url) as conn:
            written = conn.execute("SELECT count(*) FROM customers").fetchone()
    if written != (args.rows,):
        raise ChildFailed(f"{side.label}/{runtime}: {written} customers written, expected {args.rows}")
    expected = str(tree / "worker")
    for key in ("sandbox_file", "worker_sandbox_file"):
        if not result[key].startswith(expected + os.sep):
            raise SystemExit(f"{side.label}/{runtime}: {key} {result[key]} is not under {expected}")
    print(
        f"  {side.label:<6} {runtime:<5} measured in {time.monotonic() - started:.0f}s; "
        f"pinned by {result['pinned_by']}, kernel {result['kernel']}, image {result['image']}",
        flush=True,
    )
    return result


# (label, the figure from one child's result, higher is better)
METRICS: list[tuple[str, Callable[[dict[str, Any]], float], bool]] = [
    ("to first log line (s, median)", lambda r: r["first_line_s"], False),
    ("to completion (s, median)", lambda r: r["completion_s"], False),
    ("{burst} runs at once (runs/s)", lambda r: r["burst"] / r["burst_s"], True),
    ("seeding, in the run (rows/s)", lambda r: r["rows"] / r["seed_run_s"], True),
    ("seeding, wall (rows/s)", lambda r: r["rows"] / r["seed_wall_s"], True),
]


def print_table(
    results: dict[tuple[str, str], list[dict[str, Any]]], runtimes: list[str], args: argparse.Namespace
) -> None:
    print(
        f"\nbefore = {args.baseline}; after = {args.after or 'this checkout as it is'}; rounds={args.rounds} "
        f"repeat={args.repeat} burst={args.burst} slots={args.slots} rows={args.rows}"
    )
    print(
        "each figure: the median over the rounds; ratio = after/before; "
        "cost = how many times slower after is (above 1: the hardening costs)"
    )
    print(f"{'measure':<32} {'runtime':<8} {'before':>10} {'after':>10} {'ratio':>7} {'cost':>6}")
    for label, figure, higher_is_better in METRICS:
        for runtime in runtimes:
            name = label.format(burst=args.burst)
            before, after = (
                statistics.median(figure(r) for r in results[side, runtime])
                if (side, runtime) in results
                else None
                for side in ("before", "after")
            )
            cells = [
                "failed" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.3f}"
                for value in (before, after)
            ]
            if before is not None and after is not None:
                ratio = after / before
                cost = 1 / ratio if higher_is_better else ratio
                cells += [f"{ratio:.2f}", f"{cost:.2f}"]
            else:
                cells += ["", ""]
            print(f"{name:<32} {runtime:<8} {cells[0]:>10} {cells[1]:>10} {cells[2]:>7} {cells[3]:>6}")
    for (side, runtime), rounds in sorted(results.items()):
        first = rounds[0]
        pinned = f"the engine's {first['engine_runtime']!r}, pinned by {first['pinned_by']}"
        print(f"{side}/{runtime}: Ray workers ran {first['worker_sandbox_file']} ({pinned})")


def measure_all(
    sides: list[Side], runtimes: list[str], shim_dir: Path, args: argparse.Namespace
) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], list[str]]:
    """Every (side, runtime) `--rounds` times: the results by (side, runtime), and what failed."""
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    failures: list[str] = []
    for round_ in range(args.rounds):
        # Alternate the order so that a machine getting busier or quieter does not favour a side.
        for runtime in runtimes:
            for side in sides if round_ % 2 == 0 else sides[::-1]:
                try:
                    result = measure(side, runtime, shim_dir, args)
                except ChildFailed as exc:
                    print(exc, flush=True)
                    failures.append(str(exc).split("\n")[0])
                    continue
                results.setdefault((side.label, runtime), []).append(result)
    return results, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the code before the hardening")
    parser.add_argument(
        "--after",
        default="",
        help="git ref to measure as AFTER; default: this checkout as it is, uncommitted changes included",
    )
    parser.add_argument("--runtimes", default="runc,runsc", help="comma-separated: runc, runsc")
    parser.add_argument(
        "--before-runsc",
        default="runsc",
        help="the engine's name of the gVisor runtime the BEFORE side uses (e.g. one registered without "
        "--oci-seccomp, as runsc was before the hardening)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="before/after pairs per runtime, order alternated"
    )
    parser.add_argument("--repeat", type=int, default=10, help="first-line samples per child")
    parser.add_argument("--burst", type=int, default=50, help="trivial runs submitted at once")
    parser.add_argument("--slots", type=int, default=4, help="sandboxes at once")
    parser.add_argument("--rows", type=int, default=20_000, help="customers seeded")
    args = parser.parse_args()
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = set(wanted) - {"runc", "runsc"}
    if unknown or not wanted:
        parser.error(f"--runtimes takes runc and/or runsc, not {args.runtimes!r}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    runtimes, notes = available_runtimes(wanted, args.before_runsc)

    with contextlib.ExitStack() as stack:
        shim_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (shim_dir / "sitecustomize.py").write_text(SHIM)
        before = stack.enter_context(ref_tree(args.baseline))
        after = stack.enter_context(ref_tree(args.after)) if args.after else ROOT
        results, failures = measure_all(
            [Side("before", before), Side("after", after)], runtimes, shim_dir, args
        )
    print_table(results, runtimes, args)
    for note in notes:
        print(note)
    for failure in failures:
        print(f"not measured: {failure}")
    if any(f.startswith("before/runsc") for f in failures) and "--oci-seccomp" in notes[0]:
        print(OCI_SECCOMP_HINT)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
