"""Python client of a Seedbed coordinator.

The scenario API (objects, in the manner of Dataiku's)::

    from seedbed.client import Client
    with Client("127.0.0.1:50051", api_key="sbk_…") as client:
        project = client.get_default_project()
        scenario = project.get_scenario("nightly-customers")
        run = scenario.run_and_wait(params={"rows": "1000"})   # raises unless SUCCESS
        print(run.outcome, run.duration, [s.job_ids for s in run.get_details().steps])
        settings = scenario.get_settings()
        for reporter in settings.raw_reporters:                # Dataiku-shaped dicts
            if reporter["messaging"]["type"] == "mail-scenario":
                reporter["messaging"]["configuration"]["sender"] = "seedbed@example.com"
        settings.save()

Code written for Dataiku's ``dataikuapi`` scenario API runs with the import and the connection
changed: ids keep their case (``"MYSCENARIO"``), ``active = False`` stops the triggers but not
explicit runs, ``get_last_finished_run()`` raises ``NoRunError`` (a ValueError) when there is none.

The lower-level calls return the contract's messages::

    client.put_scenario("hello", script=open("hello.py").read())
    fire = client.run("hello", params={"rows": "10"})
    for line in client.stream_logs(fire.run_id):
        print(line.text)

A run's trace (spans from the RunScenario call down to each batch written) and its OTLP JSON::

    trace = run.get_trace()                       # or client.get_run_trace(run_id)
    for depth, span in trace.walk():
        print("  " * depth + span.name, span.duration, span.attributes)
    document = trace.to_otlp_json()

A run's assets (files it kept): ``run.assets()``, each with ``.download(path)`` and ``.read()``.

Log events carry the script's log fields as Python values and the ids of the span they were written
in: ``event.fields``, ``event.trace_id``, ``event.span_id``.

Over TLS: ``Client("https://host:50051", ca_file="ca.pem")``, with ``client_cert_file`` and
``client_key_file`` when the coordinator requires client certificates; the files default to
SEEDBED_TLS_CA_FILE, SEEDBED_TLS_CLIENT_CERT_FILE and SEEDBED_TLS_CLIENT_KEY_FILE (the rule:
``seedbed.client._transport``).

Errors: see ``seedbed.client._errors`` for the tree (ClientError for refused calls,
FireCancelledError and RunFailedError for outcomes, ValueError for values checked locally, NoRunError
for a last run that does not exist).
"""

from seedbed.client._assets import AssetIntegrityError, RunAsset
from seedbed.client._client import Client, ClientError
from seedbed.client._errors import FireCancelledError, NoRunError, OutcomeError, RunFailedError
from seedbed.client._logs import LogEvent, RunEnded
from seedbed.client._projects import Project
from seedbed.client._runs import ErrorInfo, RunDetails, ScenarioRun, StepDetails, TriggerFire
from seedbed.client._scenarios import Scenario, ScenarioListItem, ScenarioStatus
from seedbed.client._settings import ScenarioSettings
from seedbed.client._traces import RunTrace, TraceSpan

__all__ = [
    "AssetIntegrityError",
    "Client",
    "ClientError",
    "ErrorInfo",
    "FireCancelledError",
    "LogEvent",
    "NoRunError",
    "OutcomeError",
    "Project",
    "RunDetails",
    "RunEnded",
    "RunFailedError",
    "RunAsset",
    "RunTrace",
    "Scenario",
    "ScenarioListItem",
    "ScenarioRun",
    "ScenarioSettings",
    "ScenarioStatus",
    "StepDetails",
    "TraceSpan",
    "TriggerFire",
]
