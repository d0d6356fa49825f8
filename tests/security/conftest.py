"""Attacks tried through the real path: a hostile script, template or tenant against the real
coordinator, Ray, Docker and PostgreSQL. One test module per finding; every test here fails on a
Seedbed without the defence it names.

The fixtures of the integration tests (one local Ray per session, the Docker engine, a real
coordinator) serve these tests too."""

from __future__ import annotations

from tests.integration.conftest import coordinator, docker_client, ray_session

__all__ = ["coordinator", "docker_client", "ray_session"]
