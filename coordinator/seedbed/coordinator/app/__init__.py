"""The coordinator's use cases: what a user can do, in one place that knows no protocol.

    runs = RunUseCases(store, supervisor, hub, purger, fires, limits, tracing)
    fire = await runs.run_scenario("scn_orders", {"rows": "100"}, idempotency_key="ci-4711")
    async for event in await runs.stream_logs(fire.run_id, follow=True): ...
    templates = TemplateUseCases(store, dispatcher, settings, limits)
    rows = await templates.preview_template("tmpl_customer", count=5, seed=7)

Runs (``runs``), scenarios (``scenarios``), the catalog's connections (``catalog``) and templates
(``templates``), and who the caller is (``access``).

The faces (``seedbed.coordinator.faces``: gRPC servicers, REST, MCP) authenticate the caller, make it
the current principal, turn their request into these calls and their answers back into the protocol;
none of them validates, authorises or decides anything itself. Errors are
:class:`~seedbed.coordinator.errors.CoordinatorError` with a face-neutral ``ErrorCode``.

Import rules (``[tool.importlinter]`` in pyproject.toml, checked in CI): this package imports
neither grpc nor any web or MCP library, and no face.
"""

from seedbed.coordinator.app.access import AccessUseCases
from seedbed.coordinator.app.catalog import ConnectionUseCases
from seedbed.coordinator.app.runs import RunFilter, RunUseCases
from seedbed.coordinator.app.scenarios import ScenarioUseCases
from seedbed.coordinator.app.templates import TemplateUseCases

__all__ = [
    "AccessUseCases",
    "ConnectionUseCases",
    "RunFilter",
    "RunUseCases",
    "ScenarioUseCases",
    "TemplateUseCases",
]
