"""Store migration 0009 on SQLite and PostgreSQL: a store at 0008 holding webhook reporters saved
before deliveries were signed is upgraded; each such reporter, in its scenario and in the snapshot of
every run that still reports, has a valid signing secret (a run's the same as its scenario's), and
everything else, other scenarios and ended runs, reads back byte for byte as it was."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine
from standardwebhooks.webhooks import Webhook

from seedbed.api.v1 import scenario_pb2
from seedbed.coordinator import store as store_package
from seedbed.coordinator.model import OverlapPolicy
from seedbed.coordinator.reporters import ReporterSpec, check_signing_secret, validate_reporters
from seedbed.coordinator.store import ScenarioSettingsValue, Store, normalize_url

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _reporters(*reporters: scenario_pb2.Reporter, keep_secrets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Reporters as a save stores them, then without the secrets of those not in ``keep_secrets``:
    the shape a save wrote before deliveries were signed."""
    saved = [json.loads(json.dumps(r)) for r in validate_reporters(list(reporters))]
    for reporter in saved:
        if "webhook" in reporter and reporter["id"] not in keep_secrets:
            del reporter["webhook"]["signing_secret"]
    return saved


def _settings_text(reporters: list[dict[str, Any]], **fields: Any) -> str:
    """Settings JSON exactly as the store writes it."""
    value = ScenarioSettingsValue(reporters=tuple(reporters), **fields)
    return json.dumps(value.to_json())


def _webhook(reporter_id: str, **target: Any) -> scenario_pb2.Reporter:
    return scenario_pb2.Reporter(
        id=reporter_id,
        webhook=scenario_pb2.WebhookTarget(url=f"https://hooks.example.com/{reporter_id}", **target),
    )


def _email(reporter_id: str) -> scenario_pb2.Reporter:
    return scenario_pb2.Reporter(
        id=reporter_id, email=scenario_pb2.EmailTarget(recipients=["ops@example.com"])
    )


LEGACY = _reporters(
    _webhook(
        "old",
        headers={"Authorization": "Bearer t0ken", "X-Team": "données"},
        body_template='{"text": "${scenario_name} ⇒ ${state}"}',
    ),
    _webhook("chosen"),
    _email("mail"),
    _webhook("second"),
    keep_secrets=("chosen",),
)
CHOSEN_SECRET = next(r["webhook"]["signing_secret"] for r in LEGACY if r["id"] == "chosen")
TEXTS = {
    # A scenario with two reporters lacking a secret among others (one with its own, an e-mail).
    "scn_legacy": _settings_text(
        LEGACY, timeout_seconds=90, overlap_policy=OverlapPolicy.QUEUE_ALL, run_as="ana"
    ),
    # Webhooks that all have a secret, and settings that mention "webhook" without holding one.
    "scn_signed": _settings_text(_reporters(_webhook("hook"), keep_secrets=("hook",))),
    "scn_mail": _settings_text(_reporters(_email("mail")), run_as="webhook"),
    "scn_bare": "{}",
}
# A run snapshot may differ from its scenario: a reporter since removed ("gone").
GONE = _reporters(_webhook("old"), _webhook("gone"))
RUNS = {
    "run_queued": ("scn_legacy", "QUEUED", TEXTS["scn_legacy"]),
    "run_running": ("scn_legacy", "RUNNING", _settings_text(GONE)),
    "run_orphan": ("scn_deleted", "RUNNING", _settings_text(_reporters(_webhook("old")))),
    "run_ended": ("scn_legacy", "SUCCESS", TEXTS["scn_legacy"]),
    "run_failed": ("scn_legacy", "FAILED", _settings_text(GONE)),
}


def _scenario_row(scenario_id: str, settings: str) -> dict[str, Any]:
    return {
        "id": scenario_id,
        "name": scenario_id,
        "script": "print(1)\n",
        "settings": settings,
        "revision": 1,
        "created_at": AT,
        "updated_at": AT,
    }


def _run_row(run_id: str, scenario_id: str, state: str, settings: str) -> dict[str, Any]:
    return {
        "id": run_id,
        "scenario_id": scenario_id,
        "fire_id": f"fire_{run_id}",
        "run_key": run_id,
        "state": state,
        "params": "{}",
        "script": "print(1)\n",
        "settings": settings,
        "scenario_revision": 1,
        "created_at": AT,
        "attempt_count": 0,
        "logs_truncated": False,
        "dropped_log_lines": 0,
        "warning_count": 0,
        "last_sequence": 0,
    }


def _config(conn: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(store_package.__file__).parent / "migrations"))
    config.attributes["connection"] = conn
    return config


def _insert(conn: sa.Connection, table: str, row: dict[str, Any]) -> None:
    conn.execute(sa.table(table, *(sa.column(c) for c in row)).insert().values(**row))


def _upgrade_to_0008_and_insert(conn: sa.Connection) -> None:
    command.upgrade(_config(conn), "0008")
    for scenario_id, settings in TEXTS.items():
        _insert(conn, "scenarios", _scenario_row(scenario_id, settings))
    for run_id, (scenario_id, state, settings) in RUNS.items():
        _insert(conn, "runs", _run_row(run_id, scenario_id, state, settings))


def _texts(conn: sa.Connection) -> dict[str, str]:
    """Every scenario's and run's settings as stored, by id."""
    found: dict[str, str] = {}
    for table in ("scenarios", "runs"):
        t = sa.table(table, sa.column("id"), sa.column("settings"))
        found.update({str(i): str(s) for i, s in conn.execute(sa.select(t.c.id, t.c.settings))})
    return found


async def _run_sync(store_url: str, work: Callable[[sa.Connection], Any]) -> Any:
    engine = create_async_engine(normalize_url(store_url))
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def _hooks(text: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r["webhook"] for r in json.loads(text).get("reporters", ()) if "webhook" in r}


def _without(text: str, added: set[str]) -> str:
    """``text`` with the signing secrets of the reporters in ``added`` taken out, encoded as the
    store encodes settings."""
    settings = json.loads(text)
    for reporter in settings.get("reporters", ()):
        if reporter["id"] in added:
            del reporter["webhook"]["signing_secret"]
    return json.dumps(settings)


def test_webhook_reporters_without_a_secret_get_one_and_nothing_else_changes(store_url: str) -> None:
    async def upgraded() -> tuple[dict[str, str], list[ReporterSpec], list[ReporterSpec]]:
        await _run_sync(store_url, _upgrade_to_0008_and_insert)
        store = await Store.open(store_url)  # migrates to head
        try:
            scenario = await store.get_scenario("scn_legacy")
            run = await store.get_run("run_queued")
        finally:
            await store.aclose()
        return (
            await _run_sync(store_url, _texts),
            [ReporterSpec.from_json(r) for r in scenario.settings.reporters],
            [ReporterSpec.from_json(r) for r in run.settings.reporters],
        )

    after, scenario_specs, run_specs = asyncio.run(upgraded())

    # The scenario: each webhook has a valid key; one it had is kept, the new ones differ.
    hooks = _hooks(after["scn_legacy"])
    secrets = {reporter_id: hook["signing_secret"] for reporter_id, hook in hooks.items()}
    assert secrets["chosen"] == CHOSEN_SECRET
    assert len({secrets["old"], secrets["second"], CHOSEN_SECRET}) == 3
    for secret in secrets.values():
        assert check_signing_secret(secret, "f") == secret
        Webhook(secret)  # the library that signs deliveries takes it
    # ... and the rest of its settings is byte for byte what it was.
    assert _without(after["scn_legacy"], {"old", "second"}) == TEXTS["scn_legacy"]
    assert {s.id: s.message.webhook.signing_secret for s in scenario_specs if s.kind == "webhook"} == secrets
    assert [s.kind for s in scenario_specs] == ["webhook", "webhook", "email", "webhook"]
    old = next(s for s in scenario_specs if s.id == "old").message.webhook
    assert dict(old.headers) == {"Authorization": "Bearer t0ken", "X-Team": "données"}
    assert old.body_template == '{"text": "${scenario_name} ⇒ ${state}"}'

    # Runs that still report: the scenario's key for the same reporter, a fresh one for a reporter
    # the scenario no longer has (or a scenario that is gone).
    queued = _hooks(after["run_queued"])
    assert {r: h["signing_secret"] for r, h in queued.items()} == secrets
    assert [s.message.webhook.signing_secret for s in run_specs if s.kind == "webhook"] == [
        secrets["old"],
        CHOSEN_SECRET,
        secrets["second"],
    ]
    assert _without(after["run_queued"], {"old", "second"}) == TEXTS["scn_legacy"]
    running = _hooks(after["run_running"])
    assert running["old"]["signing_secret"] == secrets["old"]
    gone = running["gone"]["signing_secret"]
    orphan = _hooks(after["run_orphan"])["old"]["signing_secret"]
    assert check_signing_secret(gone, "f") and check_signing_secret(orphan, "f")
    assert len({gone, orphan, *secrets.values()}) == 5
    assert _without(after["run_running"], {"old", "gone"}) == RUNS["run_running"][2]
    assert _without(after["run_orphan"], {"old"}) == RUNS["run_orphan"][2]

    # Untouched: scenarios with no webhook lacking a key, and runs that have ended.
    for scenario_id in ("scn_signed", "scn_mail", "scn_bare"):
        assert after[scenario_id] == TEXTS[scenario_id]
    for run_id in ("run_ended", "run_failed"):
        assert after[run_id] == RUNS[run_id][2]


def test_downgrade_keeps_the_secrets_and_upgrading_again_changes_nothing(store_url: str) -> None:
    def upgrade_down_up(conn: sa.Connection) -> list[dict[str, str]]:
        _upgrade_to_0008_and_insert(conn)
        command.upgrade(_config(conn), "0009")
        upgraded = _texts(conn)
        command.downgrade(_config(conn), "0008")
        downgraded = _texts(conn)
        command.upgrade(_config(conn), "0009")
        return [upgraded, downgraded, _texts(conn)]

    upgraded, downgraded, again = asyncio.run(_run_sync(store_url, upgrade_down_up))
    assert upgraded != {**TEXTS, **{r: s for r, (_, _, s) in RUNS.items()}}
    assert downgraded == upgraded and again == upgraded
