"""``seedbed run replay RUN [--connection old=new …]``: a new run with a finished run's recorded
inputs, optionally into other connections; and the recorded inputs as ``run show`` prints them.

The replay is followed like ``run submit`` follows its run (``_follow.follow_fire``: log lines, the
live status, Ctrl-C, a dry run's report), with the same exit codes; ``--no-follow`` prints the
run's id once it exists.
"""

from __future__ import annotations

import click

from seedbed.api.v1 import run_pb2
from seedbed.cli._context import SeedbedCommand, state
from seedbed.cli._follow import OnInterrupt, follow_fire, on_interrupt_option
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
    return follow_fire(
        g, client, fire, follow=follow, on_interrupt=on_interrupt, what=f"replay of {run_id}: "
    )


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
