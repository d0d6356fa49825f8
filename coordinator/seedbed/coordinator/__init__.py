"""Seedbed's control plane: the gRPC server, the store, dispatch to Ray, the run supervisor."""

from seedbed.coordinator.server import Coordinator, running_in_thread, serve
from seedbed.coordinator.settings import CoordinatorSettings

__all__ = ["Coordinator", "CoordinatorSettings", "running_in_thread", "serve"]
