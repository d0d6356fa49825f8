"""Which container runtime a sandbox runs under, and the hardening options of its container.

**The runtime** (`SEEDBED_SANDBOX_RUNTIME`, passed to `DockerSandboxDriver(runtime=…)`):

    runc    the engine's standard runtime (the default): namespaces, cgroups, seccomp
    runsc   gVisor: the script's system calls are served by a user-space kernel, not the host's;
            refused (RuntimeUnavailableError) when the engine has no runtime named "runsc"
    auto    runsc when the engine has it registered, else runc

The choice is resolved against the engine's `docker info` once per driver, logged by the
coordinator at start and stated in the first system line of every attempt. The default is runc, not
auto: which runtime runs hostile code must not change because someone registered a runtime with the
engine for another purpose; an operator who wants gVisor says so, and with `runsc` gets a refusal
instead of a silent downgrade.

**Hardening on top of the driver's defaults** (non-root, no capabilities, no-new-privileges,
read-only root, no network):

- a seccomp profile tighter than Docker's default (`sandbox-seccomp.json`): the default's allow-list
  for a container without capabilities, minus ptrace, process_vm_readv/writev, io_uring_* (a large,
  bug-prone kernel surface that bypasses per-call seccomp checks), name_to_handle_at and modify_ldt.
  Docker applies exactly one profile, so a deny-list on top of the default is impossible: the file is
  an allow-list, and everything it does not name fails with EPERM (userfaultfd, perf_event_open, bpf,
  keyctl, add_key, request_key, unshare, setns, mount, … as with the default);
- no core dumps (RLIMIT_CORE 0): a crashing script leaves no memory image behind;
- `noexec` on the /tmp tmpfs (/dev/shm is noexec already): a script cannot drop a binary and run it.
  The script itself runs from memory, and Python's libraries load from the read-only image.

**gVisor and the pids limit.** Under runsc the container's pids cgroup holds gVisor's own host
threads, not the script's processes: on the ptrace platform each process of the script costs about
nine host tasks (measured: 128 sleeping processes, 1,150 host tasks). With the runc limit the Go
runtime of gVisor's kernel cannot create a thread, dies (exit code 2) and takes the sandbox with it —
that is why a script whose forked children exit failed with exit code 2 under runsc. So under gVisor
the script's limit is RLIMIT_NPROC, which gVisor enforces per sandbox (fork fails with EAGAIN, as
under runc's cgroup), and the cgroup gets room for gVisor's threads. Under runc, RLIMIT_NPROC would
count every process of the sandbox user on the host, so it is not used there.

**Seccomp under gVisor.** runsc enforces the profile inside its kernel only when registered with
`--oci-seccomp` (scripts/runsc-up does); otherwise it ignores the profile, which the attempt's first
system line then says. It answers every refused call with EPERM (it ignores `errnoRet`), so the
gVisor variant of the profile allows clone3 (see `seccomp_profile`).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import docker.types

from seedbed.worker._sandbox_errors import RuntimeUnavailableError
from seedbed.worker._sandbox_types import SandboxLimits

__all__ = [
    "DEFAULT_RUNTIME",
    "RUNTIME_CHOICES",
    "SandboxRuntime",
    "container_options",
    "resolve_runtime",
    "seccomp_profile",
]

RUNTIME_CHOICES: Final = ("runc", "runsc", "auto")
DEFAULT_RUNTIME: Final = "runc"
_GVISOR = "runsc"
# Host tasks gVisor may need per task of the script, and for itself (see the module docstring).
_GVISOR_HOST_TASKS_PER_TASK = 10
_GVISOR_HOST_TASKS_BASE = 256
_SECCOMP_FILE = "sandbox-seccomp.json"


@dataclass(frozen=True)
class SandboxRuntime:
    """The engine runtime a sandbox runs under, as resolved from the operator's choice."""

    name: str
    gvisor: bool
    choice: str
    seccomp_enforced: bool = True

    def describe(self) -> str:
        """One line for the attempt's log and the coordinator's start log."""
        text = f"sandbox runtime: {self.name}"
        notes = []
        if self.gvisor:
            notes.append("gVisor")
        if self.choice == "auto":
            notes.append("picked by auto" if self.gvisor else "picked by auto: the engine has no runsc")
        if not self.seccomp_enforced:
            notes.append("its seccomp profile is not enforced: register runsc with --oci-seccomp")
        return text + (f" ({'; '.join(notes)})" if notes else "")


def resolve_runtime(choice: str, engine_runtimes: Mapping[str, Any]) -> SandboxRuntime:
    """The runtime for `choice` ("runc", "runsc", "auto" or another runtime name the engine has)
    given the engine's `docker info` Runtimes; RuntimeUnavailableError if the engine lacks it."""
    name = choice or DEFAULT_RUNTIME
    if name == "auto":
        name = _GVISOR if _GVISOR in engine_runtimes else "runc"
    # Every engine has runc, even when `docker info` lists only the containerd shims.
    if name not in engine_runtimes and name != "runc":
        raise RuntimeUnavailableError(name, tuple(sorted(engine_runtimes)))
    entry = engine_runtimes.get(name)
    entry = entry if isinstance(entry, Mapping) else {}
    path = str(entry.get("path") or "")
    gvisor = name == _GVISOR or os.path.basename(path) == _GVISOR
    args = entry.get("runtimeArgs") or []
    seccomp_enforced = not gvisor or any(str(arg).startswith("--oci-seccomp") for arg in args)
    return SandboxRuntime(
        name=name, gvisor=gvisor, choice=choice or DEFAULT_RUNTIME, seccomp_enforced=seccomp_enforced
    )


@functools.cache
def seccomp_profile(gvisor: bool = False) -> str:
    """The sandbox's seccomp profile as compact JSON (the Docker API takes the text itself).

    For gVisor, clone3 moves to the allow-list: gVisor's enforcement of OCI profiles ignores
    `errnoRet` and answers EPERM, on which the C library's pthread_create fails instead of falling
    back to clone (no thread could start). gVisor's own kernel serves clone3 (this release answers
    ENOSYS itself), so allowing it opens nothing on the host."""
    text = resources.files("seedbed.worker").joinpath(_SECCOMP_FILE).read_text(encoding="utf-8")
    profile = json.loads(text)
    if gvisor:
        rules = [rule for rule in profile["syscalls"] if rule["names"] != ["clone3"]]
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ALLOW"})
        profile["syscalls"] = rules
    return json.dumps(profile, separators=(",", ":"))


def container_options(limits: SandboxLimits, runtime: SandboxRuntime) -> dict[str, Any]:
    """The keyword arguments of `containers.create` that confine the sandbox's kernel surface
    and resources (the driver adds image, user, network, labels and streams)."""
    ulimits = [
        docker.types.Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
        docker.types.Ulimit(name="core", soft=0, hard=0),
    ]
    pids_limit = limits.pids
    if runtime.gvisor:
        ulimits.append(docker.types.Ulimit(name="nproc", soft=limits.pids, hard=limits.pids))
        pids_limit = limits.pids * _GVISOR_HOST_TASKS_PER_TASK + _GVISOR_HOST_TASKS_BASE
    return {
        "runtime": runtime.name,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges", f"seccomp={seccomp_profile(runtime.gvisor)}"],
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={limits.tmpfs_bytes},mode=1777"},
        "shm_size": min(limits.tmpfs_bytes, 64 * 2**20),
        "pids_limit": pids_limit,
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,  # equal to the memory limit: no swap
        "nano_cpus": limits.nano_cpus,
        "ulimits": ulimits,
    }
