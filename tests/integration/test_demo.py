"""The README's main command, ``./scripts/demo``, end to end: it starts a coordinator of its own (a
first start, so a generated admin key), pushes the shop's templates and runs the shop scenario on
the embedded defaults. Run from a scratch folder linked to this checkout, so a developer's own
``.seedbed`` is left alone."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_on_a_first_start_and_again(tmp_path: Path) -> None:
    # Set-up in the checkout first (a no-op when up to date), so the demo's own set-up, which sees
    # the same virtual environment and pyproject.toml through the links, finds nothing to install.
    setup = subprocess.run([str(ROOT / "scripts" / "setup")], capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, setup.stderr[-3000:]
    for name in ("scripts", "examples", ".venv", "pyproject.toml"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if k not in ("SEEDBED_API_KEY", "SEEDBED_ADMIN_API_KEY")}
    for _ in range(2):  # the second run finds the store and the key file of the first
        done = subprocess.run(
            [str(tmp_path / "scripts" / "demo")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "holds 100 customers and 500 orders; orders without a customer: 0" in done.stdout
        assert re.search(r"the web console: http://127\.0\.0\.1:\d+/console/", done.stdout), done.stdout
        assert "GET /console/: 200" in done.stdout
        # The run's trace, from the call that started it down to each batch it wrote.
        waterfall = done.stdout.split("where the run spent its time", 1)[1]
        for span in ("RunService/RunS", "attempt 1", "script", "step orders", "INSERT"):
            assert span in waterfall, waterfall
    assert (tmp_path / ".seedbed" / "admin-api-key").stat().st_mode & 0o077 == 0
    # The shop's database lives apart from the coordinator's private folder and store.
    assert (tmp_path / ".seedbed-demo" / "shop.db").exists()
    assert stat.S_IMODE((tmp_path / ".seedbed").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / ".seedbed" / "seedbed.db").stat().st_mode) == 0o600
