"""Every webhook reporter holds a signing secret: the ones saved before deliveries were signed get one.

Until now such a reporter got its key on the next save of its scenario and, in between, sent its
deliveries unsigned. Each of them now gets a fresh key (``whsec_`` + base64 of 32 random bytes, what
a save generates), which an editor reads from the scenario to set up the receiver. Nothing else
changes: scenarios without such a reporter are not written, and in those that are, only the new
``signing_secret`` keys are added (the store writes settings with ``json.dumps``' defaults, so
encoding them again gives the rest back byte for byte).

Runs keep a snapshot of their scenario's settings, and reports are sent from that snapshot. A run
that is still queued or running gets, for each such reporter, the secret its scenario's reporter of
the same id holds after this upgrade (the key the receiver is set up with), or a fresh one when the
scenario no longer has that reporter. Ended runs are left as they were: they report nothing more.

The generator is copied from ``reporters.new_signing_secret`` rather than imported: migrations here
import nothing of the product but the schema, since a migration records what one upgrade did and
must not change when the product code does; and ``reporters`` sits above the store (it imports it),
so the store's migrations importing it would run the dependency backwards. The migration test checks
its keys with ``reporters.check_signing_secret``, so the two cannot drift apart unnoticed.

Downgrade keeps the secrets. The previous revision reads them already (the JSON column is the same),
receivers may have been set up with them since, and a generated key cannot be told from one an
editor chose; removing them would only bring back unsigned deliveries.

Revision ID: 0009
Revises: 0008
"""

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# States of runs that still report (RUN_STARTED and RUN_FINISHED, or RUN_FINISHED alone).
_REPORTING_STATES = ("QUEUED", "RUNNING")
# Only settings that mention a webhook can hold one (a cheap filter, checked again after decoding).
_MENTIONS_WEBHOOK = '%"webhook"%'


def _new_secret() -> str:
    # Copy of reporters.new_signing_secret (see the module docstring for why it is not imported).
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _webhooks(settings: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(reporter id, webhook target) of each webhook reporter in decoded settings JSON."""
    reporters = settings.get("reporters") if isinstance(settings, dict) else None
    for reporter in reporters if isinstance(reporters, list) else ():
        hook = reporter.get("webhook") if isinstance(reporter, dict) else None
        if isinstance(hook, dict):
            yield str(reporter.get("id", "")), hook


def upgrade() -> None:
    bind = op.get_bind()
    scenarios = sa.table("scenarios", sa.column("id", sa.String), sa.column("settings", sa.Text))
    runs = sa.table(
        "runs",
        sa.column("id", sa.String),
        sa.column("scenario_id", sa.String),
        sa.column("state", sa.String),
        sa.column("settings", sa.Text),
    )

    # (scenario id, reporter id) -> the reporter's secret once this upgrade is done.
    current: dict[tuple[str, str], str] = {}
    found = bind.execute(
        sa.select(scenarios.c.id, scenarios.c.settings).where(scenarios.c.settings.like(_MENTIONS_WEBHOOK))
    ).all()
    for scenario_id, text in found:
        settings = json.loads(text)
        added = False
        for reporter_id, hook in _webhooks(settings):
            if not hook.get("signing_secret"):
                hook["signing_secret"] = _new_secret()
                added = True
            current[(scenario_id, reporter_id)] = hook["signing_secret"]
        if added:
            bind.execute(
                scenarios.update().where(scenarios.c.id == scenario_id).values(settings=json.dumps(settings))
            )

    found = bind.execute(
        sa.select(runs.c.id, runs.c.scenario_id, runs.c.settings).where(
            runs.c.state.in_(_REPORTING_STATES), runs.c.settings.like(_MENTIONS_WEBHOOK)
        )
    ).all()
    for run_id, scenario_id, text in found:
        settings = json.loads(text)
        added = False
        for reporter_id, hook in _webhooks(settings):
            if not hook.get("signing_secret"):
                hook["signing_secret"] = current.get((scenario_id, reporter_id)) or _new_secret()
                added = True
        if added:
            bind.execute(runs.update().where(runs.c.id == run_id).values(settings=json.dumps(settings)))


def downgrade() -> None:
    # Deliberately nothing: see the module docstring.
    pass
