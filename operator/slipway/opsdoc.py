"""docs/operator.md, generated: the operator's settings (environment variables) and the `slipway` command's
verbs and flags, from `settings.OperatorSettings` and `cli.build_parser`, so the reference cannot drift
from the code. `python -m slipway.opsdoc docs/operator.md` writes it (`make api-docs`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from slipway.api.apidoc import cell, write_generated
from slipway.cli import build_parser
from slipway.settings import OperatorSettings
from slipway.storage.puller import build_parser as pull_parser

HEADER = """# The operator: settings and the `slipway` command

<!-- Generated from operator/slipway/settings.py and operator/slipway/cli.py by slipway/opsdoc.py
(`make api-docs`); edit those, not this file. A test fails when it drifts. -->

The custom resources are described in [api.md](api.md). This page lists how the operator itself is
configured and the command that runs it.

## Settings

Read from the environment when the operator starts (`manifests/base` sets the ones a cluster needs);
names are the field's, upper case, with the prefix `SLIPWAY_`. A list is given as JSON
(`SLIPWAY_NAMESPACES='["ml","staging"]'`).

| Variable | Type | Default | Description |
|---|---|---|---|
"""


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return "random per process" if field.default_factory.__name__ == "<lambda>" else "empty"
    return f"`{field.default}`"


def settings_rows() -> list[str]:
    rows = []
    for name, field in OperatorSettings.model_fields.items():
        type_name = getattr(field.annotation, "__name__", str(field.annotation))
        description = " ".join((field.description or "").split())
        rows.append(f"| `SLIPWAY_{name.upper()}` | {type_name} | {_default(field)} | {cell(description)} |")
    return rows


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help or "" for choice in action._choices_actions}
    return {}


def command_lines(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    lines: list[str] = []
    helps = _helps(parser)
    for name, sub in _subcommands(parser).items():
        nested = _subcommands(sub)
        if nested:
            lines += command_lines(sub, f"{prefix} {name}")
            continue
        if name == "pull":  # parsed by the puller itself
            sub = pull_parser()
        text = helps.get(name, "")
        lines += [f"### `{prefix} {name}`", "", text[:1].upper() + text[1:] + ".", ""]
        lines += argument_table(sub)
    return lines


def argument_table(parser: argparse.ArgumentParser) -> list[str]:
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    if not options:
        return []
    lines = ["| Argument | Default | Meaning |", "|---|---|---|"]
    for action in options:
        flag = ", ".join(action.option_strings) or action.dest
        default = "" if action.default in (None, False, []) else f"`{action.default}`"
        lines.append(f"| `{flag}` | {default} | {cell(action.help or '')} |")
    return [*lines, ""]


def render() -> str:
    lines = [HEADER.rstrip("\n"), *settings_rows(), "", "## The `slipway` command", ""]
    lines += command_lines(build_parser(), "slipway")
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.exit(write_generated(sys.argv[1:], "slipway.opsdoc", render))
