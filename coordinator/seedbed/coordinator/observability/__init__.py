"""Observability of the coordinator: one trace per run (``tracing``), Prometheus metrics
(``metrics``) and the coordinator's own log lines (``logs``)."""
