"""The trusted agent that serves a sandboxed script's SDK calls (one per attempt)."""

from seedbed.worker.agent._agent import Agent
from seedbed.worker.agent._errors import AgentError

__all__ = ["Agent", "AgentError"]
