"""Template references with a version: ``tmpl_order`` (the version fixed for the run) or
``tmpl_order@3`` (version 3, whatever the latest is).

A pin is read where a script names a template (``dm.generate("tmpl_order@3", ...)``); `ref` fields
inside templates name a template without a version, because they draw from the rows this run
generated of that template, whichever version made them. Malformed pins are refused with what a
version looks like, never guessed at: ``tmpl_x@`` (no version), ``tmpl_x@0`` and ``tmpl_x@-1``
(versions count from 1), ``tmpl_x@v2`` or ``tmpl_x@2.0`` (not a whole number), and numbers past
a signed 64-bit integer (no such version can exist).
"""

from __future__ import annotations

from dataclasses import dataclass

from seedbed.worker.templates._errors import TemplateError

__all__ = ["MAX_TEMPLATE_VERSION", "TemplatePin", "TemplatePinError", "parse_template_pin"]

MAX_TEMPLATE_VERSION = 2**63 - 1


class TemplatePinError(TemplateError):
    """A template reference whose version part is malformed (`text`: the reference, cut)."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(
            f"template reference {text!r}: {reason}; pin a version as 'tmpl_x@3' (versions count from 1; "
            "`seedbed template history tmpl_x` lists them), or leave '@…' out for the run's version"
        )
        self.text = text


@dataclass(frozen=True, slots=True)
class TemplatePin:
    template_id: str
    version: int | None  # None: the version fixed for the run

    def __str__(self) -> str:
        return self.template_id if self.version is None else f"{self.template_id}@{self.version}"


def parse_template_pin(text: str) -> TemplatePin:
    """Split ``tmpl_x@N`` into the id and the version (None without ``@``). The id itself is not
    checked here: an unknown one is refused where templates are looked up."""
    template_id, at, version = text.partition("@")
    if not at:
        return TemplatePin(text, None)
    shown = text[:120]
    if not template_id:
        raise TemplatePinError(shown, "a template id must come before '@'")
    if not version:
        raise TemplatePinError(shown, "a version number must follow '@'")
    # ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses or reads.
    if not version.isascii() or not version.isdigit():
        raise TemplatePinError(shown, f"version {version[:40]!r} is not a whole number from 1")
    if len(version) > 19 or int(version) > MAX_TEMPLATE_VERSION:
        raise TemplatePinError(shown, f"version {version[:40]} is past the largest possible version")
    number = int(version)
    if number < 1:
        raise TemplatePinError(shown, "versions count from 1")
    return TemplatePin(template_id, number)
