"""Benchmark: the ``seedbed`` command's start-up with the light install against the full one, and
what each install weighs.

    .venv/bin/python -m tests.bench.bench_cli [--times 20] [--runs 5]

The light install is Seedbed's base wheel (built here) alone in a fresh venv of this Python; the
full install is this repository's environment (both extras and the dev tools), the baseline
measured in the same run. A coordinator on embedded defaults (SQLite store, local Ray, local Docker
sandboxes) holds ``--runs`` finished runs of a trivial script. Two tables:

1. Start-up (median and worst of ``--times`` wall-clock runs, ms, both installs taking turns):
   ``seedbed --help``, and ``seedbed run list`` against the coordinator (one call, a table of the
   runs). Each command is run once first in each install (the page cache; Python's bytecode files).
2. Size: ``du`` of each install's site-packages, and, computed from the full environment's metadata
   (each distribution's recorded files), what ``pip install seedbed``, ``seedbed[worker]`` and
   ``seedbed[server]`` install (without pip itself; Seedbed's own files are counted in the light
   venv only, as the full environment holds an editable install of it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import docker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from seedbed.api.v1 import scenario_pb2
from seedbed.client import Client
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.worker.images import ensure_image
from tests.conftest import ROOT
from tests.integration.test_light_install import RUN_LIST

TRIVIAL = "print('hello', flush=True)\n"
_MB = 1024 * 1024


def build_light_venv(into: Path) -> Path:
    """The base wheel installed alone in a fresh venv under ``into``; the venv's folder."""
    wheels, venv = into / "wheel", into / "venv"
    pip = ["-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [sys.executable, *pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
    )
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (wheel,) = wheels.glob("seedbed-*.whl")
    subprocess.run([str(venv / "bin" / "python"), *pip, "install", str(wheel)], check=True)
    return venv


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr}")
    return seconds


def site_packages(venv: Path) -> Path:
    (found,) = (venv / "lib").glob("python3.*/site-packages")
    return found


def du_bytes(path: Path) -> int:
    return (
        int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout.split()[0]) * 1024
    )


def closure(extras: frozenset[str]) -> dict[str, int]:
    """The distributions ``pip install seedbed[extras]`` installs, read from this environment's
    metadata (markers evaluated here), and each one's recorded size in bytes (Seedbed's: 0)."""
    sizes: dict[str, int] = {}
    wanted: dict[str, frozenset[str]] = {}
    todo = [("seedbed", extras)]
    while todo:
        name, asked = todo.pop()
        key = canonicalize_name(name)
        if key in wanted and asked <= wanted[key]:
            continue
        wanted[key] = wanted.get(key, frozenset()) | asked
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a requirement this platform or Python does not take
        if key not in sizes:
            files = [] if key == "seedbed" else (dist.files or [])
            sizes[key] = sum(
                os.path.getsize(p) for f in files if (p := Path(str(dist.locate_file(f)))).is_file()
            )
        environments = [{"extra": extra} for extra in wanted[key]] or [{"extra": ""}]
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or any(requirement.marker.evaluate(e) for e in environments):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--times", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ensure_image(docker.from_env())  # built beforehand: not part of any figure
    full_venv = Path(sys.executable).parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        light_venv = build_light_venv(data / "light")
        settings = CoordinatorSettings(
            listen="127.0.0.1:0",
            rest_listen="",
            metrics_listen="",
            store_url=f"sqlite+aiosqlite:///{data / 'store.db'}",
            data_dir=data / "coordinator",
        )
        with running_in_thread(settings) as coordinator:
            # The admin key configured (tests.conftest sets one), else the one written at first start.
            key = settings.admin_api_key or (data / "coordinator" / "admin-api-key").read_text().strip()
            with Client(coordinator.address, api_key=key) as client:
                scenario_id = client.put_scenario(
                    "bench-cli",
                    script=TRIVIAL,
                    settings=scenario_pb2.ScenarioSettings(
                        overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT
                    ),
                ).id
                for _ in range(args.runs):
                    client.wait(client.run(scenario_id).run_id)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", tmp),
                "LANG": "C.UTF-8",
                "XDG_CONFIG_HOME": str(data / "config"),
                "SEEDBED_ADDRESS": coordinator.address,
                "SEEDBED_API_KEY": key,
                "NO_COLOR": "1",
            }
            commands = {"seedbed --help": ["--help"], f"seedbed {' '.join(RUN_LIST)}": list(RUN_LIST)}
            installs = {"light": light_venv, "full": full_venv}
            times: dict[tuple[str, str], list[float]] = {}
            for command, argv in commands.items():
                for venv in installs.values():
                    wall_time([str(venv / "bin" / "seedbed"), *argv], env)  # warm
                for _ in range(args.times):
                    for install, venv in installs.items():
                        seconds = wall_time([str(venv / "bin" / "seedbed"), *argv], env)
                        times.setdefault((command, install), []).append(seconds)
        light_size = du_bytes(site_packages(light_venv))
    full_size = du_bytes(site_packages(full_venv))
    installs_by_extra = {
        "seedbed": closure(frozenset()),
        "seedbed[worker]": closure(frozenset({"worker"})),
        "seedbed[server]": closure(frozenset({"server"})),
    }

    print(f"\nStart-up of the command, {args.times} times each (ms, wall clock)\n")
    print("| command | light: median | light: worst | full: median | full: worst | full ÷ light (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    medians: dict[str, dict[str, float]] = {}
    for command in commands:
        light, full = times[(command, "light")], times[(command, "full")]
        medians[command] = {"light": statistics.median(light) * 1000, "full": statistics.median(full) * 1000}
        print(
            f"| `{command}` | {medians[command]['light']:,.0f} | {max(light) * 1000:,.0f} "
            f"| {medians[command]['full']:,.0f} | {max(full) * 1000:,.0f} "
            f"| {medians[command]['full'] / medians[command]['light']:.2f} |"
        )
    print("\nSize of each install\n")
    print("| install | distributions | MB |")
    print("|---|---:|---:|")
    print(
        f"| light venv's site-packages (`du`; the base wheel, pip included) | — | {light_size / _MB:,.1f} |"
    )
    print(f"| full venv's site-packages (`du`; both extras and the dev tools) | — | {full_size / _MB:,.1f} |")
    for name, sizes in installs_by_extra.items():
        print(
            f"| `pip install {name}` (recorded files, Seedbed's own left out) "
            f"| {len(sizes)} | {sum(sizes.values()) / _MB:,.1f} |"
        )
    print(
        json.dumps(
            {
                "startup_ms": medians,
                "site_packages_mb": {"light": light_size / _MB, "full": full_size / _MB},
                "install_mb": {n: sum(s.values()) / _MB for n, s in installs_by_extra.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
