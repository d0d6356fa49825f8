"""The sandbox driver's exception tree (re-exported by `seedbed.worker.sandbox`).

Kept in its own module so that `seedbed.worker.images` and `seedbed.worker.sandbox` can both raise
these without importing each other.

    SandboxError                 base of everything the sandbox driver raises
    ├── ImageBuildError          building the sandbox image failed (step names the stage)
    ├── EngineUnavailableError   the Docker engine cannot be reached (url names it)
    ├── RuntimeUnavailableError  the engine lacks the container runtime asked for (runtime, available)
    └── ProtocolError            a frame from the sandbox broke the channel protocol
"""

from __future__ import annotations

__all__ = [
    "EngineUnavailableError",
    "ImageBuildError",
    "ProtocolError",
    "RuntimeUnavailableError",
    "SandboxError",
]


class SandboxError(Exception):
    """Base class of the sandbox driver's errors."""


class ImageBuildError(SandboxError):
    """Building the sandbox image failed.

    `step` is one of "mmdebstrap", "docker import", "pip download", "docker build" or "inputs";
    `output` is the tail of that step's output.
    """

    def __init__(self, step: str, message: str, output: str = "") -> None:
        self.step = step
        self.output = output
        text = f"image build failed at step {step!r}: {message}"
        if output:
            text += f"\n--- last output of {step} ---\n{output}"
        super().__init__(text)


class EngineUnavailableError(SandboxError):
    """The Docker engine cannot be reached."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(
            f"Docker engine unreachable at {url}: {detail}; start Docker or set SEEDBED_DOCKER_URL"
        )


class RuntimeUnavailableError(SandboxError):
    """The Docker engine has no container runtime of the name the sandbox must use."""

    def __init__(self, runtime: str, available: tuple[str, ...]) -> None:
        self.runtime = runtime
        self.available = available
        hint = (
            "install gVisor and register it with the engine as 'runsc' (see scripts/runsc-up)"
            if runtime == "runsc"
            else f"register {runtime!r} with the engine"
        )
        have = ", ".join(available) or "none"
        super().__init__(
            f"the Docker engine has no container runtime {runtime!r} (it has: {have}); "
            f"{hint}, or set SEEDBED_SANDBOX_RUNTIME=runc or auto"
        )


class ProtocolError(SandboxError):
    """A frame from the sandbox is malformed (too long, not JSON, wrong schema)."""
