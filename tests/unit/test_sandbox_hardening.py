"""The sandbox's runtime choice and container hardening options, without an engine."""

from __future__ import annotations

import json

import pytest

from seedbed.coordinator import CoordinatorSettings
from seedbed.worker._sandbox_hardening import container_options, resolve_runtime, seccomp_profile
from seedbed.worker.sandbox import RuntimeUnavailableError, SandboxLimits

BOTH = {"runc": {"path": "runc"}, "runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--oci-seccomp"]}}
RUNC_ONLY = {"runc": {"path": "runc"}}


def test_runc_is_the_default_and_always_there() -> None:
    assert resolve_runtime("", BOTH).name == "runc"
    runtime = resolve_runtime("runc", {})
    assert (runtime.name, runtime.gvisor, runtime.describe()) == ("runc", False, "sandbox runtime: runc")
    assert CoordinatorSettings().sandbox_runtime == "runc"


def test_auto_picks_gvisor_only_when_registered() -> None:
    picked = resolve_runtime("auto", BOTH)
    assert (picked.name, picked.gvisor) == ("runsc", True)
    assert picked.describe() == "sandbox runtime: runsc (gVisor; picked by auto)"
    fallback = resolve_runtime("auto", RUNC_ONLY)
    assert fallback.name == "runc"
    assert fallback.describe() == "sandbox runtime: runc (picked by auto: the engine has no runsc)"


def test_runsc_missing_is_refused_with_what_to_do() -> None:
    with pytest.raises(RuntimeUnavailableError) as caught:
        resolve_runtime("runsc", RUNC_ONLY)
    assert caught.value.runtime == "runsc" and caught.value.available == ("runc",)
    message = str(caught.value)
    assert "no container runtime 'runsc'" in message and "runsc-up" in message
    assert "SEEDBED_SANDBOX_RUNTIME=runc or auto" in message


def test_gvisor_without_oci_seccomp_says_so() -> None:
    runtime = resolve_runtime(
        "runsc", {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}}
    )
    assert not runtime.seccomp_enforced
    assert "--oci-seccomp" in runtime.describe()
    # A differently named gVisor runtime is gVisor too (by its binary).
    assert resolve_runtime("gvisor", {"gvisor": {"path": "/opt/bin/runsc"}}).gvisor


def test_settings_accept_only_the_three_choices() -> None:
    with pytest.raises(ValueError, match="sandbox_runtime"):
        CoordinatorSettings(sandbox_runtime="kata")  # type: ignore[arg-type]


def _rules(profile: dict[str, object]) -> list[dict[str, object]]:
    rules = profile["syscalls"]
    assert isinstance(rules, list)
    return rules


def test_seccomp_profile_is_an_allow_list_without_the_dangerous_calls() -> None:
    profile = json.loads(seccomp_profile())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {
        name
        for rule in _rules(profile)
        if rule["action"] == "SCMP_ACT_ALLOW" and "args" not in rule
        for name in rule["names"]  # type: ignore[attr-defined]
    }
    denied = {"ptrace", "io_uring_setup", "io_uring_enter", "io_uring_register", "process_vm_readv"}
    denied |= {"userfaultfd", "perf_event_open", "bpf", "keyctl", "add_key", "request_key"}
    denied |= {"unshare", "setns", "mount", "personality", "clone", "clone3", "modify_ldt"}
    assert not allowed & denied
    assert {"read", "write", "execve", "futex", "mmap", "arch_prctl", "wait4"} <= allowed
    # clone only without namespace flags; clone3 answers ENOSYS so the C library falls back to clone.
    clone = next(rule for rule in _rules(profile) if rule["names"] == ["clone"])
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]
    clone3 = next(rule for rule in _rules(profile) if rule["names"] == ["clone3"])
    assert (clone3["action"], clone3["errnoRet"]) == ("SCMP_ACT_ERRNO", 38)


def test_gvisor_profile_lets_its_kernel_answer_clone3() -> None:
    rules = _rules(json.loads(seccomp_profile(gvisor=True)))
    assert [rule["action"] for rule in rules if rule["names"] == ["clone3"]] == ["SCMP_ACT_ALLOW"]
    assert not any("ptrace" in rule["names"] for rule in rules)  # type: ignore[operator]


def test_container_options_harden_under_both_runtimes() -> None:
    limits = SandboxLimits(pids=100, nofile=200, tmpfs_bytes=2**20)
    runc = container_options(limits, resolve_runtime("runc", BOTH))
    assert runc["runtime"] == "runc" and runc["pids_limit"] == 100
    assert "noexec" in runc["tmpfs"]["/tmp"].split(",")
    assert runc["security_opt"][0] == "no-new-privileges"
    assert runc["security_opt"][1] == f"seccomp={seccomp_profile()}"
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in runc["ulimits"]}
    assert ulimits == {"nofile": (200, 200), "core": (0, 0)}  # no nproc: it is per host user

    gvisor = container_options(limits, resolve_runtime("runsc", BOTH))
    assert gvisor["runtime"] == "runsc"
    # The script's limit is RLIMIT_NPROC inside gVisor; the cgroup has room for gVisor's threads.
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in gvisor["ulimits"]}
    assert ulimits["nproc"] == (100, 100) and ulimits["core"] == (0, 0)
    assert gvisor["pids_limit"] == 100 * 10 + 256
    assert gvisor["security_opt"][1] == f"seccomp={seccomp_profile(gvisor=True)}"
