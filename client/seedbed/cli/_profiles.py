"""Profiles: where ``seedbed login`` keeps a coordinator's address, API key and CA file.

One YAML file, ``$SEEDBED_CONFIG_FILE`` or ``$XDG_CONFIG_HOME/seedbed/profiles.yaml`` (by default
``~/.config/seedbed/profiles.yaml``), written with mode 0600 in a 0700 folder, replaced atomically::

    current: staging
    profiles:
      staging: {address: "https://seedbed.staging:50051", api_key: "sbk_…", tls_ca_file: "/etc/ca.pem"}

A file that others may read is refused (as ssh refuses such a key): it holds API keys. Which
profile a command uses: ``--profile``, else ``SEEDBED_PROFILE``, else the file's ``current``.
What a profile gives yields to the command line and the environment: ``--address`` or
``SEEDBED_ADDRESS`` over the profile's address, ``--api-key`` or ``SEEDBED_API_KEY`` over its key.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

ENV_FILE = "SEEDBED_CONFIG_FILE"
ENV_PROFILE = "SEEDBED_PROFILE"
DEFAULT_PROFILE = "default"
_MAX_BYTES = 1 * 2**20


class ProfileError(Exception):
    """The profiles file cannot be used, or names no such profile; the message says what to do."""


@dataclass(frozen=True)
class Profile:
    address: str = ""
    api_key: str = ""
    tls_ca_file: str = ""


def path() -> Path:
    explicit = os.environ.get(ENV_FILE, "")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME", "") or str(Path.home() / ".config")
    return Path(base) / "seedbed" / "profiles.yaml"


@dataclass
class ProfileFile:
    current: str
    profiles: dict[str, Profile]

    @classmethod
    def load(cls) -> ProfileFile:
        """The file's profiles; none when it does not exist."""
        where = path()
        try:
            info = where.stat()
        except FileNotFoundError:
            return cls(current="", profiles={})
        except OSError as exc:
            raise ProfileError(f"cannot read {where}: {exc.strerror}") from None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ProfileError(
                f"{where} holds API keys but others may read it (mode {stat.S_IMODE(info.st_mode):04o}): "
                f"run `chmod 600 {where}`"
            )
        if info.st_size > _MAX_BYTES:
            raise ProfileError(f"{where} is over {_MAX_BYTES:,} bytes: is it the right file?")
        try:
            document = yaml.safe_load(where.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ProfileError(f"cannot read {where}: {exc}") from None
        return cls._parse(document, where)

    @classmethod
    def _parse(cls, document: Any, where: Path) -> ProfileFile:
        if not isinstance(document, dict) or not isinstance(document.get("profiles", {}), dict):
            raise ProfileError(f"{where}: expected `current:` and a `profiles:` mapping")
        known = {f.name for f in fields(Profile)}
        profiles: dict[str, Profile] = {}
        for name, entry in document.get("profiles", {}).items():
            if not isinstance(entry, dict) or not set(entry) <= known:
                raise ProfileError(f"{where}: profile {name!r} takes only {', '.join(sorted(known))}")
            profiles[str(name)] = Profile(**{k: str(v) for k, v in entry.items() if v is not None})
        return cls(current=str(document.get("current") or ""), profiles=profiles)

    def select(self, name: str | None) -> tuple[str, Profile | None]:
        """The profile a command uses (see the module's note) and its name; None when no profile
        is named and none is current. A named profile that does not exist is a ProfileError."""
        chosen = name or os.environ.get(ENV_PROFILE, "") or self.current
        if not chosen:
            return "", None
        if chosen not in self.profiles:
            known = ", ".join(sorted(self.profiles)) or "none yet"
            raise ProfileError(
                f"no profile {chosen!r} in {path()} (profiles: {known}); "
                f"create it with `seedbed login --profile {chosen}`"
            )
        return chosen, self.profiles[chosen]

    def save(self) -> Path:
        """Write the file atomically (synced, then renamed over the old one) with mode 0600, its
        folder 0700. Callers that read, change and save hold ``locked()`` around the three."""
        where = path()
        where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        document = {
            "current": self.current,
            "profiles": {
                name: {k: v for k, v in asdict(p).items() if v} for name, p in sorted(self.profiles.items())
            },
        }
        handle, temporary = tempfile.mkstemp(dir=where.parent, prefix=".profiles-", suffix=".yaml")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                os.fchmod(out.fileno(), 0o600)
                yaml.safe_dump(document, out, sort_keys=False)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, where)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return where


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Hold the profiles file's lock (a ``.lock`` file beside it): two logins at once both land."""
    where = path()
    where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(where.with_name(where.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
