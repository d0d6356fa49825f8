"""The light install: Seedbed's base wheel in a clean virtual environment, on each Python the client
supports (3.11, 3.12, 3.13), holds the client and the command and nothing of the server or the
worker, and talks to a real coordinator (started here, from the repository's environment, running a
real sandbox).

One wheel is built for the module (``pip wheel --no-deps``, hatchling from this environment); each
Python gets a fresh venv in the module's temporary folder and ``pip install``s the wheel there
(pip's cache serves the dependencies after the first time). One more venv, on the oldest Python,
holds every base requirement at its lower bound (``3.11-lowest``): the bounds pyproject.toml
declares are the ones tested. The commands run with a small
environment of their own: no PYTHONPATH, no user site, a configuration folder of their own.

Interpreters are looked for under pyenv's versions folder, then as ``pythonX.Y`` on the PATH (this
process's own Python for its version). In CI (``CI`` set, as ``.ci/run`` does) a missing one fails
the test; elsewhere it is skipped, naming what to install.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from seedbed.cli import _extras
from seedbed.cli._extras import missing_distributions, require_extra
from seedbed.coordinator import running_in_thread
from tests.conftest import ADMIN_API_KEY, ROOT, settings_for

pytestmark = pytest.mark.integration

PYTHONS = ("3.11", "3.12", "3.13")
# Each venv: a Python, or the oldest Python with the base requirements at their lower bounds.
LOWEST = f"{PYTHONS[0]}-lowest"
# Listing runs: `seedbed run list` (the old spelling `seedbed runs` is a hidden alias for a release).
RUN_LIST = ("run", "list")
# What the base install must never bring, whatever the extras' lists say.
HEAVY = {"ray", "docker", "sqlalchemy", "fastapi", "opentelemetry-sdk", "numpy", "faker", "alembic"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _extras_only() -> set[str]:
    """The distributions the server and worker extras name and the base install does not."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

    def names(requirements: list[str]) -> set[str]:
        return {_normalize(m.group()) for r in requirements if (m := name.match(r))}

    extras = project["optional-dependencies"]
    return names(extras["server"] + extras["worker"]) - names(project["dependencies"]) - {"seedbed"}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _version_key(path: Path) -> tuple[int, ...]:
    # ~/.pyenv/versions/3.13.0/bin/python3.13 → (3, 13, 0); a suffixed build sorts first.
    return tuple(int(p) if p.isdigit() else -1 for p in path.parents[1].name.split("."))


def find_python(version: str) -> str | None:
    """An interpreter of ``version`` that can make a venv, or None."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = sorted(
        root.glob(f"versions/{version}.*/bin/python{version}"), key=_version_key, reverse=True
    )
    on_path = shutil.which(f"python{version}")
    found = [str(c) for c in candidates] + ([on_path] if on_path else [])
    for python in found:
        check = subprocess.run(
            [python, "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if check.returncode == 0 and check.stdout.strip() == version:
            return python
    return None


@dataclass(frozen=True)
class LightVenv:
    """A clean venv with the base wheel installed, and the environment its commands run with."""

    label: str
    root: Path
    env: dict[str, str]

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), capture_output=True, text=True, env=self.env, timeout=timeout, cwd=self.root
        )

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-m", "pip", "--disable-pip-version-check", *args, timeout=600)

    def seedbed(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.root / "bin" / "seedbed"), *args, timeout=timeout)

    def python_code(self, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-c", textwrap.dedent(code), *args)


@pytest.fixture(scope="module")
def base_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--disable-pip-version-check", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("seedbed-*.whl")
    return wheel


def lower_bounds() -> list[str]:
    """Each base requirement pinned at its lower bound (``grpcio==1.85.1`` for ``grpcio>=1.85.1,<2``)."""
    pins = []
    for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        (lowest,) = [s.version for s in requirement.specifier if s.operator == ">="]
        pins.append(f"{requirement.name}=={lowest}")
    return pins


@pytest.fixture(scope="module", params=[*PYTHONS, LOWEST])
def light_venv(
    request: pytest.FixtureRequest, base_wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> LightVenv:
    label: str = request.param
    version = label.removesuffix("-lowest")
    python = find_python(version)
    if python is None:
        message = f"no Python {version} here (pyenv's versions, PATH): pyenv install {version}"
        if _in_ci():
            pytest.fail(f"CI must test the client on every supported Python: {message}")
        pytest.skip(message)
    root = tmp_path_factory.mktemp(f"light-{label}")
    env = {
        "PATH": f"{root / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(root)),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "XDG_CONFIG_HOME": str(root / "config"),
        "SEEDBED_API_KEY": ADMIN_API_KEY,
        "NO_COLOR": "1",
    }
    subprocess.run([python, "-m", "venv", str(root / "venv")], check=True, env=env, timeout=120)
    venv = LightVenv(label, root / "venv", env)
    pins = lower_bounds() if label == LOWEST else []
    installed = venv.pip("install", "-q", str(base_wheel), *pins)
    assert installed.returncode == 0, installed.stderr
    return venv


@pytest.fixture(scope="module")
def coordinator_address(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real coordinator (SQLite store, the session's Ray, Docker sandboxes) for every venv."""
    tmp = tmp_path_factory.mktemp("light-coordinator")
    settings = settings_for(f"sqlite+aiosqlite:///{tmp / 'store.db'}", tmp)
    with running_in_thread(settings) as coordinator:
        yield coordinator.address


def test_the_wheel_carries_its_licence_and_type_markers(base_wheel: Path) -> None:
    name, version = base_wheel.name.split("-")[:2]
    dist_info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(base_wheel) as wheel:
        names = set(wheel.namelist())
        # PEP 561: the packages a user's type checker reads (seedbed.api's covers seedbed.api.v1).
        assert {f"seedbed/{package}/py.typed" for package in ("client", "cli", "api")} <= names
        assert "License-Expression: Apache-2.0" in wheel.read(f"{dist_info}/METADATA").decode()
        licence = wheel.read(f"{dist_info}/licenses/LICENSE").decode()
    assert licence.split()[:4] == ["Apache", "License", "Version", "2.0,"]


def test_the_base_install_holds_the_client_and_nothing_of_the_server(light_venv: LightVenv) -> None:
    listed = light_venv.pip("list", "--format=json")
    assert listed.returncode == 0, listed.stderr
    versions = {_normalize(d["name"]): d["version"] for d in json.loads(listed.stdout)}
    installed = set(versions)
    if light_venv.label == LOWEST:
        for pin in lower_bounds():
            name, _, lowest = pin.partition("==")
            assert Version(versions[_normalize(name)]) == Version(lowest), pin
    assert {"seedbed", "grpcio", "protobuf", "click", "rich", "pyyaml"} <= installed
    assert installed.isdisjoint(HEAVY | _extras_only()), sorted(installed & (HEAVY | _extras_only()))
    imported = light_venv.python_code(
        """
        import json
        import seedbed.api.v1.run_pb2_grpc, seedbed.client, seedbed.cli
        from seedbed.cli._extras import missing_distributions
        print(json.dumps({extra: missing_distributions(extra) for extra in ("server", "worker")}))
        """
    )
    assert imported.returncode == 0, imported.stderr
    missing = json.loads(imported.stdout)
    assert {"ray", "sqlalchemy", "fastapi"} <= {_normalize(n) for n in missing["server"]}
    assert {"ray", "docker", "faker"} <= {_normalize(n) for n in missing["worker"]}


def test_the_command_starts_and_shows_its_version(light_venv: LightVenv) -> None:
    helped = light_venv.seedbed("--help")
    assert helped.returncode == 0, helped.stderr
    assert "run" in helped.stdout and "scenario" in helped.stdout
    shown = light_venv.seedbed("--version")
    assert shown.returncode == 0, shown.stderr
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert shown.stdout.strip() == f"seedbed {version}"


def test_seedbed_server_answers_with_the_install_line(light_venv: LightVenv) -> None:
    refused = light_venv.seedbed("server")
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "`seedbed server` needs the server's libraries" in refused.stderr
    assert "pip install 'seedbed[server]'" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_client_runs_a_scenario_and_the_command_lists_it(
    light_venv: LightVenv, coordinator_address: str
) -> None:
    scenario_id = f"light-{light_venv.label.replace('.', '-')}"
    ran = light_venv.python_code(
        """
        import sys
        from seedbed.api.v1 import run_pb2
        from seedbed.client import Client, LogEvent

        address, scenario_id = sys.argv[1:]
        with Client(address) as client:
            client.put_scenario(scenario_id, script="print('hello from Python', flush=True)\\n")
            fire = client.run(scenario_id)
            run = client.wait(fire.run_id)
            lines = [e.line.text for e in client.stream_logs(fire.run_id) if isinstance(e, LogEvent)]
        print(fire.run_id, run_pb2.RunState.Name(run.state), lines)
        """,
        coordinator_address,
        scenario_id,
    )
    assert ran.returncode == 0, ran.stderr
    run_id, state, lines = ran.stdout.strip().split(" ", 2)
    assert state == "RUN_STATE_SUCCESS", ran.stdout
    assert "'hello from Python'" in lines
    listed = light_venv.seedbed("--address", coordinator_address, *RUN_LIST)
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout


def test_the_full_install_has_both_extras() -> None:
    # This environment was installed with .[dev] (both extras): nothing missing, nothing refused,
    # and the lists come from Seedbed's own metadata.
    assert {"ray", "sqlalchemy", "fastapi"} <= {_normalize(n) for n in _extras._extra_requirements("server")}
    assert missing_distributions("server") == [] and missing_distributions("worker") == []
    require_extra("server", feature="seedbed server")
    require_extra("worker", feature="seedbed image build")
