"""Luigi's command-line form for ``ductwork build``: ``Task --param value --Section-param value``.

Parsing is a pure function of the argument list and the parameter names that exist, so it can
be tested (and property-tested) without running anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ductwork.errors import ParameterError, UnknownParameterError, did_you_mean


@dataclass
class BuildArgs:
    root: dict[str, str] = field(default_factory=dict)
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    typed: dict[tuple[str, str], str] = field(default_factory=dict)
    """Each section value's option as it was typed (``log-level``, ``core-log-level``), for errors."""


def _split(tokens: Sequence[str]) -> list[tuple[str, str | None]]:
    """``--name value``, ``--name=value`` and bare flags as (name, value) pairs."""
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise ParameterError(f"unexpected argument {token!r}: parameters are given as --name value")
        name = token[2:]
        if "=" in name:
            name, value = name.split("=", 1)
            out.append((name, value))
            i += 1
            continue
        if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
            out.append((name, tokens[i + 1]))
            i += 2
        else:
            out.append((name, None))
            i += 1
    return out


def parse_build_args(
    tokens: Sequence[str],
    root_params: Mapping[str, bool],
    sections: Mapping[str, Mapping[str, bool]],
    *,
    root_name: str,
    unsectioned: Mapping[str, str] | None = None,
) -> BuildArgs:
    """Sort options into the root task's parameters and other classes' parameters.

    ``root_params`` and each section map parameter names to whether they are boolean (a bare
    ``--flag`` means true for those). ``unsectioned`` maps the parameters of classes given
    without their section (Luigi's ``use_cmdline_section = False``: ``core``'s ``--log-level``,
    ``--parallel-scheduling``) to that section: a Luigi cron line writes them so, and Luigi
    has no ``--core-log-level``.
    """
    result = BuildArgs()
    for raw, value in _split(tokens):
        name = raw.replace("-", "_")
        if name in root_params:
            result.root[name] = _flag_value(raw, value, root_params[name])
            continue
        if unsectioned and name in unsectioned and name in sections.get(unsectioned[name], {}):
            owner = unsectioned[name]
            result.sections.setdefault(owner, {})[name] = _flag_value(raw, value, sections[owner][name])
            result.typed[(owner, name)] = raw
            continue
        section, sep, rest = raw.partition("-")
        if sep and section in sections:
            param = rest.replace("-", "_")
            if param not in sections[section]:
                raise UnknownParameterError(
                    f"{section} has no parameter {param!r}.{did_you_mean(param, sections[section])}"
                )
            result.sections.setdefault(section, {})[param] = _flag_value(raw, value, sections[section][param])
            result.typed[(section, param)] = raw
            continue
        # Suggested as they are typed (``core-log-level``): ``core-log_level`` read as a typo.
        choices = [p.replace("_", "-") for p in root_params]
        choices += [f"{s}-{p.replace('_', '-')}" for s, ps in sections.items() for p in ps]
        raise UnknownParameterError(
            f"{root_name}: unknown parameter --{raw}.{did_you_mean(raw.replace('_', '-'), choices)} "
            f"Parameters of {root_name}: {', '.join('--' + p.replace('_', '-') for p in root_params) or '(none)'}"
        )
    return result


def _flag_value(raw: str, value: str | None, is_bool: bool) -> str:
    if value is not None:
        return value
    if is_bool:
        return "true"
    raise ParameterError(f"--{raw} needs a value")
