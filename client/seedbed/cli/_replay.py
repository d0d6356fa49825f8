"""``seedbed run replay RUN [--connection old=new …]``: a new run with a finished run's recorded
inputs, optionally into other connections; and the recorded inputs as ``run show`` prints them.

The replay is followed like ``run submit`` follows its run (log lines, the live status, Ctrl-C),
with the same exit codes; ``--no-follow`` prints the run's id once it exists.
"""

from __future__ import annotations

import click

from seedbed.api.v1 import run_pb2
from seedbed.cli._catalog_options import tell
from seedbed.cli._context import SeedbedCommand, state
from seedbed.cli._exits import for_run_state
from seedbed.cli._follow import (
    LogView,
    OnInterrupt,
    ctrl_c,
    describe,
    follow_run,
    interruptible,
    on_interrupt_option,
    wait_for_fire,
)
from seedbed.cli._input import key_values

# The same variable as `run submit`'s (`_runs.ENV_IDEMPOTENCY_KEY`).
ENV_IDEMPOTENCY_KEY = "SEEDBED_IDEMPOTENCY_KEY"


@click.command(cls=SeedbedCommand)
@click.argument("run_id", metavar="RUN")
@click.option(
    "-c",
    "--connection",
    "connections",
    multiple=True,
    metavar="OLD=NEW",
    callback=key_values,
    help="write what the run wrote through connection OLD to connection NEW instead (same kind; repeatable)",
)
@click.option(
    "--follow/--no-follow",
    default=True,
    help="follow the replay's logs until it ends (default), or print its id once it exists and return",
)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    envvar=ENV_IDEMPOTENCY_KEY,
    help=f"the same key replays once: a retried command gets the first replay ({ENV_IDEMPOTENCY_KEY})",
)
@on_interrupt_option
def replay(
    run_id: str,
    connections: dict[str, str],
    follow: bool,
    idempotency_key: str | None,
    on_interrupt: OnInterrupt | None,
) -> int:
    """Replay run RUN: a new run with its script (as it ran, not as the scenario is now), params,
    run key (so every seed), template versions and sandbox image.

    Without --connection the replay writes to the same connections, whose write ledger already
    holds every batch of RUN: nothing is written again. A worker whose Faker release differs from
    RUN's refuses the replay (the same seeds would give other rows). Exit codes as `run submit`.

    \b
    Examples:
      seedbed run replay run_5f0c2a9e1b7d4c3a --connection shop=shop_staging
      seedbed run replay run_5f0c2a9e1b7d4c3a -c shop=shop_b -c api=api_b --no-follow -o json
    """
    g = state()
    client = g.client()
    fire = client.replay_run(run_id, connections, idempotency_key=idempotency_key or "")
    run_ids: list[str] = []
    view = LogView(g, to_stdout=g.output == "table")

    def queued() -> list[run_pb2.TriggerFire]:
        return [] if run_ids else [fire]

    with ctrl_c(client, lambda: run_ids, on_interrupt, g, queued), view:
        run_ids.append(interruptible(lambda: wait_for_fire(client, fire, view)))
        view.say(f"[seedbed] replay of {run_id}: fire {fire.id} → run {run_ids[0]}")
        if not follow:
            view.close()
            tell(client.get_fire(fire.id), run_ids[0])
            return 0
        ended = interruptible(lambda: follow_run(client, run_ids[0], view))
    view.say(f"[seedbed] {describe(ended)}")
    if g.output != "table":
        g.emit(ended, lambda: "")
    return int(for_run_state(ended.state))


def input_rows(run: run_pb2.Run) -> list[tuple[str, object]]:
    """What ``run show`` prints of the run's recorded inputs (and the run it replays)."""
    rows: list[tuple[str, object]] = []
    if run.replayed_from:
        rows.append(("replay of", run.replayed_from))
    inputs = run.inputs
    if inputs.image:
        rows.append(("image", inputs.image))
    if inputs.versions:
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in sorted(inputs.versions.items()))))
    if run.templates_used:  # every use, in order: "tmpl_x@3" (the run's version), "tmpl_x@1 (pinned)"
        uses = (f"{u.template_id}@{u.version}{' (pinned)' if u.pinned else ''}" for u in run.templates_used)
        rows.append(("templates", ", ".join(uses)))
    elif inputs.template_versions:  # none recorded (yet): the versions a replay was pinned to
        rows.append(("templates", ", ".join(f"{k}@{v}" for k, v in sorted(inputs.template_versions.items()))))
    if inputs.connection_aliases:
        rows.append(
            ("connections", ", ".join(f"{k} → {v}" for k, v in sorted(inputs.connection_aliases.items())))
        )
    return rows
