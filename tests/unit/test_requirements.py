"""The `# requirements:` header: parsing and validation (pure), the derived image's tag (pure),
and how pip's failures are explained (captured pip 26 output). No Docker, no network."""

from __future__ import annotations

import pytest

from seedbed.worker._requirements import (
    HeaderRequirement,
    canonical_requirements,
    explain_download_failure,
    header_requirements,
)
from seedbed.worker.images import (
    RequirementsError,
    _against_base,
    derived_image_tag,
    parse_requirements_header,
)
from seedbed.worker.sandbox import SandboxError


def error_of(script: str) -> RequirementsError:
    with pytest.raises(RequirementsError) as info:
        parse_requirements_header(script)
    return info.value


# -- parsing ---------------------------------------------------------------------------------


def test_no_header_is_empty() -> None:
    assert parse_requirements_header("") == ()
    assert parse_requirements_header("import faker\nprint(1)\n") == ()
    assert parse_requirements_header("# just a comment\n\nprint('# requirements: x')\n") == ()


def test_the_example_header() -> None:
    script = (
        "# requirements: python-slugify==8.0.4, tabulate==0.9.0\n"
        "# requirements: text-unidecode==1.3\n"
        "from slugify import slugify\n"
    )
    assert parse_requirements_header(script) == (
        "python-slugify==8.0.4",
        "tabulate==0.9.0",
        "text-unidecode==1.3",
    )
    assert header_requirements(script) == (
        HeaderRequirement("python-slugify==8.0.4", "python-slugify", 1),
        HeaderRequirement("tabulate==0.9.0", "tabulate", 1),
        HeaderRequirement("text-unidecode==1.3", "text-unidecode", 2),
    )


def test_header_among_other_leading_comments_blank_lines_and_crlf() -> None:
    script = (
        "#!/usr/bin/env python\r\n"
        "# -*- coding: utf-8 -*-\r\n"
        "\r\n"
        "# Seeds the shop.\r\n"
        "  #   Requirements :  Python_Slugify==8.0.4   # slugs for product names\r\n"
        "import faker\r\n"
    )
    assert header_requirements(script) == (HeaderRequirement("python-slugify==8.0.4", "python-slugify", 5),)


def test_canonical_form_extras_and_versions() -> None:
    script = "# requirements: PSYCOPG[Pool,binary]==3.3.9, Tabulate==0.9, foo.bar==1.0.0-post1\n"
    assert parse_requirements_header(script) == (
        "psycopg[binary,pool]==3.3.9",
        "tabulate==0.9",
        "foo-bar==1.0.0.post1",
    )


def test_duplicates_merge_and_conflicting_duplicates_fail() -> None:
    script = (
        "# requirements: tabulate==0.9.0, psycopg[pool]==3.3.9\n"
        "# requirements: Tabulate==0.9.0, psycopg==3.3.9\n"
    )
    assert parse_requirements_header(script) == ("tabulate==0.9.0", "psycopg[pool]==3.3.9")
    error = error_of("# requirements: tabulate==0.9.0\n#\n# requirements: tabulate==0.8.10\n")
    assert error.line == 3
    assert "pinned twice" in str(error) and "line 1" in str(error)


def test_simple_markers_are_evaluated_for_the_sandbox() -> None:
    script = (
        "# requirements: a==1; python_version >= '3.11', b==2; python_version < '3.10'\n"
        "# requirements: c==3; sys_platform == 'win32', "
        "d==4; platform_machine == 'x86_64' and os_name == 'posix'\n"
    )
    assert parse_requirements_header(script) == ("a==1", "d==4")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("tabulate", "is not pinned: pin it: tabulate==<version>"),
        ("tabulate>=0.9", "is not an exact pin: pin it: tabulate==<version>"),
        ("tabulate~=0.9.0", "is not an exact pin"),
        ("tabulate==0.9.*", "is not an exact pin"),
        ("tabulate===0.9.0", "is not an exact pin"),
        ("tabulate==0.9.0,<1", "version ranges are not allowed"),
        ("tabulate!=0.8", "is not an exact pin"),
        ("tabulate==not-a-version", "not a valid requirement"),
        ("-e git+https://github.com/x/y", "options such as -e"),
        ("--index-url https://evil.example/simple", "options such as -e"),
        ("-r other.txt", "options such as -e"),
        ("tabulate @ https://example.com/tabulate.whl", "URLs and direct references"),
        ("https://example.com/tabulate.whl", "URLs and direct references"),
        ("tabulate==0.9.0; platform_release == '6.1'", "platform_release"),
        ("tabulate==0.9.0; extra == 'x'", "extra"),
        ("tabu late==1", "not a valid requirement"),
        ("x" * 190 + "==1.0.0.0.0.0", "at most 200 are allowed"),
    ],
)
def test_bad_items_name_the_line_and_what_to_do(header: str, expected: str) -> None:
    error = error_of(f"# scenario\n\n# requirements: faker==40.54.0, {header}\nimport faker\n")
    assert error.line == 3
    assert expected in str(error)
    assert str(error).startswith("requirements header, line 3: ")
    assert "pin" in str(error) or "marker" in str(error) or "at most" in str(error)


def test_empty_header_line() -> None:
    error = error_of("# requirements:\nprint(1)\n")
    assert error.line == 1 and "empty" in str(error) and "tabulate==0.9.0" in str(error)
    assert error_of("# requirements: ,  ,\n").line == 1


def test_at_most_50_packages() -> None:
    fifty = ", ".join(f"p{i}==1" for i in range(50))
    assert len(parse_requirements_header(f"# requirements: {fifty}\n")) == 50
    error = error_of(f"# requirements: {fifty}\n# requirements: p50==1\n")
    assert error.line == 2 and "at most 50" in str(error)


def test_header_after_code_or_docstring_is_an_error_not_ignored() -> None:
    error = error_of("import faker\n# requirements: tabulate==0.9.0\n")
    assert error.line == 2 and "before any code" in str(error) and "move it" in str(error)
    error = error_of('"""Seeds the shop."""\n# requirements: tabulate==0.9.0\nimport tabulate\n')
    assert error.line == 2
    error = error_of("def f():\n    # requirements: tabulate==0.9.0\n    pass\n")
    assert error.line == 2


def test_header_beyond_line_30_is_an_error() -> None:
    script = "#\n" * 30 + "# requirements: tabulate==0.9.0\nprint(1)\n"
    assert error_of(script).line == 31
    script = "#\n" * 29 + "# requirements: tabulate==0.9.0\nprint(1)\n"
    assert parse_requirements_header(script) == ("tabulate==0.9.0",)


def test_header_text_inside_strings_and_inline_comments_is_not_a_header() -> None:
    script = (
        '"""Docs: a scenario adds packages with\n'
        "# requirements: tabulate==0.9.0\n"
        '"""\n'
        "x = 1  # requirements: not-a-header\n"
    )
    assert parse_requirements_header(script) == ()


def test_a_script_that_does_not_tokenize_leaves_the_report_to_python() -> None:
    # The SyntaxError will be the clearer report; the header itself is fine.
    assert parse_requirements_header("# requirements: tabulate==0.9.0\ndef (:\n") == ("tabulate==0.9.0",)


def test_error_is_a_value_error_and_a_sandbox_error() -> None:
    error = error_of("# requirements: tabulate\n")
    assert isinstance(error, ValueError) and isinstance(error, SandboxError)


# -- API validation and the derived image's tag ----------------------------------------------


def test_canonical_requirements_sorts_and_validates() -> None:
    assert canonical_requirements(["Tabulate==0.9.0", "python_slugify==8.0.4"]) == (
        "python-slugify==8.0.4",
        "tabulate==0.9.0",
    )
    with pytest.raises(RequirementsError, match="not pinned"):
        canonical_requirements(["tabulate"])
    with pytest.raises(TypeError):
        canonical_requirements("tabulate==0.9.0")


def test_derived_tag_is_pure_and_keyed_by_base_and_pins() -> None:
    base = "seedbed-python:0123456789abcdef"
    tag = derived_image_tag(base, ["tabulate==0.9.0", "python-slugify==8.0.4"])
    repository, _, digest = tag.partition(":")
    assert repository == "seedbed-python-x" and len(digest) == 16
    assert tag == derived_image_tag(base, ["Python_Slugify==8.0.4", "tabulate==0.9.0"])
    assert tag != derived_image_tag(base, ["tabulate==0.9.0"])
    assert tag != derived_image_tag(base, ["tabulate==0.9.0", "python-slugify==8.0.3"])
    other_base = "seedbed-python:fedcba9876543210"
    assert tag != derived_image_tag(other_base, ["tabulate==0.9.0", "python-slugify==8.0.4"])


def test_pins_are_checked_against_the_preinstalled_packages() -> None:
    installed = {"faker": "40.54.0", "psycopg": "3.3.9", "numpy": "2.4.6"}
    assert _against_base(["tabulate==0.9.0", "numpy==2.4.6"], installed) == ["tabulate==0.9.0"]
    assert _against_base(["psycopg[pool]==3.3.9"], installed) == ["psycopg[pool]==3.3.9"]
    with pytest.raises(RequirementsError) as info:
        _against_base(["faker==30.0.0"], installed)
    assert info.value.package == "faker"
    assert "faker==30.0.0 conflicts with faker==40.54.0, preinstalled" in str(info.value)
    assert "pin faker==40.54.0" in str(info.value)


# -- pip's failures --------------------------------------------------------------------------

# Output of pip 26 (`pip download --only-binary=:all: … -c <installed>`), as captured.
COULD_NOT_FIND = "ERROR: Could not find a version that satisfies the requirement "
NO_SUCH_PACKAGE = (
    "Looking in links: /opt/wheels\n"
    f"{COULD_NOT_FIND}seedbed-no-such-package==1.0 (from versions: none)\n"
    "ERROR: No matching distribution found for seedbed-no-such-package==1.0\n"
)
NO_SUCH_VERSION = (
    f"{COULD_NOT_FIND}tabulate==0.0.99 (from versions: 0.7.7, 0.8.10, 0.9.0, 0.10.0)\n"
    "ERROR: No matching distribution found for tabulate==0.0.99\n"
)
BASE_CONFLICT = """\
ERROR: Cannot install faker==30.0.0 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested faker==30.0.0
    The user requested (constraint) faker==40.54.0

To fix this you could try to:
1. loosen the range of package versions you've specified

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/
"""
TRANSITIVE_CONFLICT = """\
Collecting pytest-httpx==0.22.0
  Downloading pytest_httpx-0.22.0-py3-none-any.whl (12 kB)
ERROR: Cannot install pytest-httpx==0.22.0 because these package versions have conflicting dependencies.

The conflict is caused by:
    pytest-httpx 0.22.0 depends on httpx==0.24.*
    The user requested (constraint) httpx==0.28.1

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/
"""
INVALID_METADATA = (
    "WARNING: Ignoring version 0.21.0 of pytest-httpx since it has invalid metadata:\n"
    f"{COULD_NOT_FIND}pytest-httpx==0.21.0 (from versions: 0.20.0, 0.21.0)\n"
)
OFFLINE = (
    "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) "
    "after connection broken by 'NewConnectionError(...)': /simple/tabulate/\n"
    f"{COULD_NOT_FIND}tabulate==0.9.0 (from versions: none)\n"
    "ERROR: No matching distribution found for tabulate==0.9.0\n"
)


def test_unknown_package_is_named_with_the_platform() -> None:
    error = explain_download_failure(NO_SUCH_PACKAGE, ["seedbed-no-such-package==1.0"])
    assert error is not None and error.package == "seedbed-no-such-package"
    assert str(error).startswith(
        "requirements: no wheel of seedbed-no-such-package==1.0 for CPython 3.11 manylinux x86_64"
    )
    assert "pick a version with wheels" in str(error) and "check the spelling" in str(error)


def test_unknown_version_lists_the_versions_with_wheels() -> None:
    error = explain_download_failure(NO_SUCH_VERSION, ["tabulate==0.0.99", "six==1.17.0"])
    assert error is not None and error.package == "tabulate"
    assert "versions with such wheels: 0.7.7, 0.8.10, 0.9.0, 0.10.0" in str(error)


def test_conflicts_name_the_header_package() -> None:
    error = explain_download_failure(BASE_CONFLICT, ["faker==30.0.0"])
    assert error is not None and error.package == "faker"
    assert "the header pins faker==30.0.0; the sandbox image has faker==40.54.0" in str(error)
    error = explain_download_failure(TRANSITIVE_CONFLICT, ["tabulate==0.9.0", "pytest-httpx==0.22.0"])
    assert error is not None and error.package == "pytest-httpx"
    assert "pytest-httpx 0.22.0 depends on httpx==0.24.*; the sandbox image has httpx==0.28.1" in str(error)


def test_invalid_metadata_is_explained() -> None:
    error = explain_download_failure(INVALID_METADATA, ["pytest-httpx==0.21.0"])
    assert error is not None and "metadata is invalid" in str(error)


def test_network_trouble_is_not_the_scripts_fault() -> None:
    assert explain_download_failure(OFFLINE, ["tabulate==0.9.0"]) is None
    assert explain_download_failure("Killed\n", ["tabulate==0.9.0"]) is None
