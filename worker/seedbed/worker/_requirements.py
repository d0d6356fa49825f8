"""The `# requirements:` header of a scenario script: parse, validate, explain pip's failures.

A script may add packages to its sandbox with lines in its leading comment block:

    # requirements: python-slugify==8.0.4, tabulate==0.9.0
    # requirements: text-unidecode==1.3

Rules (every one is checked here, before anything is downloaded):

- Only in the leading comment block (comments and blank lines before the first line of code) and
  within the first `HEADER_MAX_LINES` lines. A `# requirements:` comment anywhere else is an error,
  not silently ignored (the script would otherwise fail later with a puzzling ImportError).
- Items are separated by commas; each is a PEP 508 name, optional extras, and exactly one `==`
  pin to a valid PEP 440 version without wildcards: `name[extra]==1.2.3`. The image tag is a hash
  of the pins, so an unpinned or ranged requirement would make one tag stand for different images.
- No URLs or direct references (`name @ https://…`), no `-e`/`-r`/`--index-url` or other options.
- An optional environment marker may use only the simple variables in `MARKER_VARIABLES`; it is
  evaluated here against the sandbox (`SANDBOX_ENVIRONMENT`: CPython 3.11 on Linux x86_64) and
  the requirement is dropped when it is false. Returned specifiers never carry markers.
- At most `MAX_REQUIREMENTS` packages, each at most `MAX_REQUIREMENT_CHARS` characters.
- The same package twice must have the same version (extras are merged).

Returned specifiers are canonical (`canonical-name[extras]==normalized-version`), so that
spelling differences (`Python_Slugify==8.0.4` vs `python-slugify==8.0.4`) hash to one image.

`explain_download_failure` turns pip's output for a failed `pip download` into a
`RequirementsError` naming the package when the failure is the script's (no such package or
version, no wheel for the platform, a conflict with the preinstalled packages), and returns None
when it looks like the infrastructure's (network, proxy, index down).
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from seedbed.worker._sandbox_errors import SandboxError

__all__ = [
    "HEADER_MAX_LINES",
    "MARKER_VARIABLES",
    "MAX_REQUIREMENTS",
    "MAX_REQUIREMENT_CHARS",
    "PLATFORM_TEXT",
    "SANDBOX_ENVIRONMENT",
    "HeaderRequirement",
    "RequirementsError",
    "canonical_requirement",
    "canonical_requirements",
    "explain_download_failure",
    "header_requirements",
    "parse_requirements_header",
    "requirement_name",
]

HEADER_MAX_LINES = 30
MAX_REQUIREMENTS = 50
MAX_REQUIREMENT_CHARS = 200
PLATFORM_TEXT = "CPython 3.11 manylinux x86_64"

# What markers are evaluated against: the sandbox image's interpreter (Debian bookworm's 3.11).
SANDBOX_ENVIRONMENT: dict[str, str] = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
MARKER_VARIABLES = frozenset(SANDBOX_ENVIRONMENT)

_DIRECTIVE = re.compile(r"#\s*requirements\s*:(?P<rest>.*)\Z", re.IGNORECASE)
_DIRECTIVE_ANYWHERE = re.compile(r"^[ \t]*#[ \t]*requirements[ \t]*:", re.IGNORECASE | re.MULTILINE)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_MARKER_WORDS = frozenset({"and", "or", "not", "in"})
_PIN_HINT = "pin it: name==version"


class RequirementsError(SandboxError, ValueError):
    """A scenario's `# requirements:` header is invalid, or a requirement cannot be satisfied.

    It is the script's fault, not the infrastructure's: the driver ends the attempt with
    SCRIPT_ERROR. `line` is the line of the script when known; `package` the canonical name of
    the package at fault when known.
    """

    def __init__(self, message: str, *, line: int | None = None, package: str | None = None) -> None:
        self.line = line
        self.package = package
        self.reason = message
        prefix = f"requirements header, line {line}: " if line is not None else "requirements: "
        super().__init__(prefix + message)


@dataclass(frozen=True)
class HeaderRequirement:
    """One pinned requirement of a header: canonical specifier, canonical name, script line."""

    spec: str
    name: str
    line: int


def requirement_name(spec: str) -> str:
    """The canonical project name of a canonical specifier (`a-b[x]==1` → `a-b`)."""
    return canonicalize_name(re.split(r"[\[=<>!~;@ ]", spec.strip(), maxsplit=1)[0])


def _split_items(text: str) -> list[str]:
    """Split on commas outside brackets, parentheses and quotes; cut an inline `# comment`."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    quote = ""
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
            continue
        if char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth = max(0, depth - 1)
        elif char == "#":
            break
        elif char == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items]


def _marker_holds(marker: Marker, text: str, line: int | None) -> bool:
    source = _QUOTED.sub(" ", str(marker))
    unknown = sorted(
        {word for word in _IDENTIFIER.findall(source) if word not in MARKER_VARIABLES | _MARKER_WORDS}
    )
    if unknown:
        raise RequirementsError(
            f"`{text}` uses the environment marker variable(s) {', '.join(unknown)}; only "
            f"{', '.join(sorted(MARKER_VARIABLES))} are allowed (the sandbox is {PLATFORM_TEXT}): "
            "drop the marker, or simplify it",
            line=line,
        )
    try:
        return bool(marker.evaluate(dict(SANDBOX_ENVIRONMENT)))
    except (InvalidMarker, ValueError, TypeError) as exc:
        raise RequirementsError(f"`{text}`: cannot evaluate its marker: {exc}", line=line) from exc


def canonical_requirement(text: str, line: int | None = None) -> str | None:
    """Validate one requirement; return its canonical specifier, or None if its marker is false
    in the sandbox. Raises RequirementsError saying what is wrong and what to do."""
    text = text.strip()
    if not text:
        raise RequirementsError(f"an empty requirement: {_PIN_HINT}", line=line)
    if len(text) > MAX_REQUIREMENT_CHARS:
        raise RequirementsError(
            f"a requirement of {len(text)} characters (`{text[:40]}…`); at most "
            f"{MAX_REQUIREMENT_CHARS} are allowed",
            line=line,
        )
    if text.startswith("-"):
        raise RequirementsError(
            f"`{text}`: options such as -e, -r, --index-url or --find-links are not allowed; list "
            f"packages from PyPI only: {_PIN_HINT}",
            line=line,
        )
    if text[0] in "<>=!~":
        raise RequirementsError(
            f"`{text}` is not a package: items are separated by commas, and version ranges are not "
            f"allowed: {_PIN_HINT}",
            line=line,
        )
    if "://" in text or "@" in text:
        raise RequirementsError(
            f"`{text}`: URLs and direct references are not allowed; only packages from PyPI, "
            f"as wheels: {_PIN_HINT}",
            line=line,
        )
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        detail = str(exc).splitlines()[0]
        raise RequirementsError(
            f"`{text}` is not a valid requirement ({detail}): {_PIN_HINT}", line=line
        ) from exc
    name = canonicalize_name(requirement.name)
    specifiers = list(requirement.specifier)
    if not specifiers:
        raise RequirementsError(
            f"`{text}` is not pinned: pin it: {name}==<version> (the image is cached by its exact pins)",
            line=line,
        )
    if len(specifiers) != 1 or specifiers[0].operator != "==" or "*" in specifiers[0].version:
        raise RequirementsError(
            f"`{text}` is not an exact pin: pin it: {name}==<version> (ranges, wildcards, ~= and === "
            "are not allowed; the image is cached by its exact pins)",
            line=line,
        )
    try:
        version = Version(specifiers[0].version)
    except InvalidVersion as exc:
        raise RequirementsError(
            f"`{text}`: {specifiers[0].version!r} is not a valid version: {_PIN_HINT}", line=line
        ) from exc
    if requirement.marker is not None and not _marker_holds(requirement.marker, text, line):
        return None
    extras = sorted({canonicalize_name(extra) for extra in requirement.extras})
    return f"{name}{'[' + ','.join(extras) + ']' if extras else ''}=={version}"


def _header_lines(script: str) -> tuple[list[tuple[int, str]], int]:
    """The `# requirements:` directives of the leading comment block (line, text after the
    colon) and the number of the first line after that block."""
    found: list[tuple[int, str]] = []
    number = 0
    for number, raw in enumerate(script.split("\n"), start=1):
        stripped = raw.strip()
        if number > HEADER_MAX_LINES or (stripped and not stripped.startswith("#")):
            return found, number
        match = _DIRECTIVE.match(stripped)
        if match:
            found.append((number, match.group("rest")))
    return found, number + 1


def _misplaced_directive(script: str, header_end: int) -> int | None:
    """The line of a `# requirements:` comment outside the header, if any (strings excluded)."""
    candidates: set[int] = set()
    for match in _DIRECTIVE_ANYWHERE.finditer(script):
        number = script.count("\n", 0, match.start()) + 1
        if number >= header_end:
            candidates.add(number)
    if not candidates:
        return None
    try:
        # Only a real comment counts: a docstring that documents the header is fine.
        for token in tokenize.generate_tokens(io.StringIO(script).readline):
            starts_its_line = not token.line[: token.start[1]].strip()
            if token.type == tokenize.COMMENT and token.start[0] in candidates and starts_its_line:
                return token.start[0]
    except (tokenize.TokenError, SyntaxError):
        # The script does not even tokenize: its SyntaxError will be the clearer report.
        return None
    return None


class _Collector:
    """Canonical pins by project name: merges duplicates, rejects conflicts, counts packages."""

    def __init__(self) -> None:
        self.by_name: dict[str, HeaderRequirement] = {}

    def add(self, text: str, line: int | None) -> None:
        spec = canonical_requirement(text, line)
        if spec is None:
            return
        name = requirement_name(spec)
        previous = self.by_name.get(name)
        if previous is not None:
            self.by_name[name] = _merge(previous, spec, line)
            return
        if len(self.by_name) >= MAX_REQUIREMENTS:
            raise RequirementsError(
                f"more than {MAX_REQUIREMENTS} packages; at most {MAX_REQUIREMENTS} are allowed",
                line=line,
            )
        self.by_name[name] = HeaderRequirement(spec=spec, name=name, line=line or 0)


def header_requirements(script: str) -> tuple[HeaderRequirement, ...]:
    """The validated, canonical requirements of a script's header, with their lines, in order.

    Raises RequirementsError (with `line`) for any invalid or misplaced header line.
    """
    # Python's own line numbering: \r\n, \r and \n end lines (str.splitlines knows more).
    script = script.replace("\r\n", "\n").replace("\r", "\n")
    directives, header_end = _header_lines(script)
    misplaced = _misplaced_directive(script, header_end)
    if misplaced is not None:
        raise RequirementsError(
            "a `# requirements:` line must be in the comment block at the top of the script, "
            f"before any code (docstring included) and within the first {HEADER_MAX_LINES} lines: "
            "move it there",
            line=misplaced,
        )
    collector = _Collector()
    for line, rest in directives:
        items = [item for item in _split_items(rest) if item]
        if not items:
            raise RequirementsError(
                f"an empty `# requirements:` line: list pinned packages, e.g. "
                f"`# requirements: tabulate==0.9.0` ({_PIN_HINT})",
                line=line,
            )
        for item in items:
            collector.add(item, line)
    return tuple(collector.by_name.values())


def canonical_requirements(requirements: Iterable[str]) -> tuple[str, ...]:
    """Validate requirement specifiers given through the API (same rules as the header);
    return them canonical, merged and sorted: the form the derived image's tag hashes."""
    if isinstance(requirements, str):
        raise TypeError("requirements must be a sequence of specifiers, not one string")
    collector = _Collector()
    for text in requirements:
        collector.add(text, None)
    return tuple(sorted(requirement.spec for requirement in collector.by_name.values()))


def _extras(spec: str) -> set[str]:
    match = re.search(r"\[([^\]]*)\]", spec)
    return {extra for extra in match.group(1).split(",") if extra} if match else set()


def _merge(previous: HeaderRequirement, spec: str, line: int | None) -> HeaderRequirement:
    old_version = previous.spec.rpartition("==")[2]
    new_version = spec.rpartition("==")[2]
    if old_version != new_version:
        where = f" on line {previous.line}" if line is not None else ""
        raise RequirementsError(
            f"{previous.name} is pinned twice with different versions ({previous.spec}{where}, "
            f"{spec} here): keep one pin",
            line=line,
            package=previous.name,
        )
    extras = sorted(_extras(previous.spec) | _extras(spec))
    merged = f"{previous.name}{'[' + ','.join(extras) + ']' if extras else ''}=={old_version}"
    return HeaderRequirement(spec=merged, name=previous.name, line=previous.line)


def parse_requirements_header(script: str) -> tuple[str, ...]:
    """The canonical pinned specifiers of a script's `# requirements:` header (empty if none).

    Pure. Raises RequirementsError naming the line and what to do when the header is invalid.
    """
    return tuple(requirement.spec for requirement in header_requirements(script))


# -- pip's failures -------------------------------------------------------------------------

_INFRASTRUCTURE_SIGNS = (
    "Retrying (Retry(",
    "NewConnectionError",
    "ConnectionError",
    "ProxyError",
    "SSLError",
    "Could not fetch URL",
    "ConnectTimeout",
    "ReadTimeout",
    "timed out",
    "Temporary failure in name resolution",
    "Name or service not known",
    "No space left on device",
    "HTTP error 5",
)
_NO_VERSION = re.compile(
    r"Could not find a version that satisfies the requirement (?P<req>\S+)"
    r"(?: \(from (?P<parent>[^)]*)\))? \(from versions: (?P<versions>[^)]*)\)"
)
_NO_DISTRIBUTION = re.compile(r"No matching distribution found for (?P<req>\S+)")
_PYTHON_IGNORED = re.compile(r"Ignored the following versions that require a different python version: (.*)")
_INVALID_METADATA = re.compile(
    r"Ignoring version (?P<version>\S+) of (?P<name>\S+) since it has invalid metadata"
)
_CANNOT_INSTALL = re.compile(r"Cannot install (?P<reqs>.+?) because these package versions")
_DEPENDS_ON = re.compile(r"(?:^|; )(?P<name>[^\s;]+) \S+ depends on ")


def _looks_like_infrastructure(output: str) -> bool:
    return any(sign in output for sign in _INFRASTRUCTURE_SIGNS)


def _name_of(text: str) -> str | None:
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def explain_download_failure(output: str, requested: Iterable[str]) -> RequirementsError | None:
    """A RequirementsError for a `pip download` that failed because of the requirements, or None
    when the output points at the network or the index (the infrastructure's problem)."""
    if _looks_like_infrastructure(output):
        return None
    names = {requirement_name(spec) for spec in requested}
    match = _NO_VERSION.search(output) or _NO_DISTRIBUTION.search(output)
    if match is not None:
        req = match.group("req")
        name = _name_of(req)
        groups = match.groupdict()
        versions = [v.strip() for v in (groups.get("versions") or "").split(",") if v.strip()]
        if versions and versions != ["none"]:
            shown = ", ".join(versions[-12:])
            available = f"versions with such wheels: {shown}"
        else:
            available = (
                "no version of it has such wheels (or no such package exists on the index: "
                "check the spelling)"
            )
        parent = groups.get("parent")
        needed = f" (needed by {parent})" if parent else ""
        python = _PYTHON_IGNORED.search(output)
        ignored = f"; ignored as needing another Python: {python.group(1).strip()}" if python else ""
        for bad in _INVALID_METADATA.finditer(output):
            ignored += (
                f"; pip ignores {bad.group('name')} {bad.group('version')} because its metadata is "
                "invalid (current pip rejects it)"
            )
        return RequirementsError(
            f"no wheel of {req}{needed} for {PLATFORM_TEXT}: {available}{ignored}; "
            "pick a version with wheels (packages are installed from wheels only, never built)",
            package=name if name in names else (_name_of(parent) if parent else name),
        )
    if "ResolutionImpossible" in output or "conflicting dependencies" in output:
        cause = _conflict_cause(output)
        mentioned: list[str | None] = []
        cannot = _CANNOT_INSTALL.search(output)
        if cannot is not None:
            mentioned += [_name_of(r) for r in re.split(r", | and ", cannot.group("reqs"))]
        mentioned += [canonicalize_name(m.group("name")) for m in _DEPENDS_ON.finditer(cause)]
        package = next((n for n in mentioned if n in names), None)
        readable = cause.replace("The user requested (constraint) ", "the sandbox image has ").replace(
            "The user requested ", "the header pins "
        )
        return RequirementsError(
            "the requested packages conflict with each other or with the packages preinstalled in "
            f"the sandbox image, which cannot change: {readable or 'pip found no compatible set'}; "
            "pick versions compatible with the preinstalled ones (see sandbox-images/python/README.md)",
            package=package,
        )
    return None


def _conflict_cause(output: str) -> str:
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith("The conflict is caused by"):
            cause: list[str] = []
            for following in lines[index + 1 :]:
                if not following.strip():
                    break
                cause.append(following.strip())
            return "; ".join(cause)
    return ""
