"""``luigi.cmdline_parser``: Luigi's command line: ``[options] Task [--param value]
[--Section-param value]``, with Luigi's global options (``--local-scheduler``, ``--workers``,
``--module``...) given without a section."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, NoReturn

from ductwork.errors import ParameterError, UnknownParameterError, did_you_mean

from .configuration.core import reset_cmdline, set_cmdline

GLOBAL_SECTION = "core"
"""Options without a section prefix belong to Luigi's ``core`` configuration class."""


class CmdlineParser:
    _instance: ClassVar[CmdlineParser | None] = None

    @classmethod
    def get_instance(cls) -> CmdlineParser | None:
        return cls._instance

    @classmethod
    @contextlib.contextmanager
    def global_instance(cls, cmdline_args: Sequence[str], allow_override: bool = False) -> Iterator[CmdlineParser]:
        orig = cls._instance
        if orig is not None and not allow_override:
            raise AssertionError("a Luigi command line is already being parsed")
        new = cls(cmdline_args)
        cls._instance = new
        token = set_cmdline(new)
        try:
            yield new
        finally:
            reset_cmdline(token)
            cls._instance = orig

    def __init__(self, cmdline_args: Sequence[str]) -> None:
        self.args = list(cmdline_args)
        self.task_name: str | None = None
        self.root: dict[str, str] = {}
        self.sections: dict[str, dict[str, str]] = {}
        self.modules: list[str] = []
        try:
            self._parse()
        except ParameterError as exc:
            _usage_error(exc)

    def _parse(self) -> None:
        """Global options, then the task name, then the task's and other classes' options."""
        global_params = _core_params()
        tokens = self.args
        i = 0
        pairs: list[tuple[str, str | None]] = []
        while i < len(tokens):
            token = tokens[i]
            if not token.startswith("--"):
                if self.task_name is None:
                    self.task_name = token
                    i += 1
                    continue
                raise ParameterError(f"unexpected argument {token!r}")
            name = token[2:]
            value: str | None = None
            if "=" in name:
                name, value = name.split("=", 1)
            elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--") and not self._is_flag(name):
                value = tokens[i + 1]
                i += 1
            i += 1
            pairs.append((name, value))
        self._pairs = pairs
        sections = _all_sections()
        for name, value in pairs:
            key = name.replace("-", "_")
            if key == "module":
                self.modules.append(value or "")
            if value == "":
                continue  # as if not given, as in Luigi (see bind)
            if key in global_params:
                self.sections.setdefault(GLOBAL_SECTION, {})[key] = "true" if value is None else value
                continue
            section, param = self._split_section(name, sections)
            if section is not None:  # --retcode-task-failed 5: known before the task is
                self.sections.setdefault(section, {})[param] = _flag(name, value, sections[section][param])

    @staticmethod
    def _is_flag(name: str) -> bool:
        param = _core_params().get(name.replace("-", "_"))
        return param is not None and param.type_name == "bool"

    def bind(self, task_cls: Any, sections: dict[str, Any]) -> None:
        """Sort the remaining options into the root task's parameters and sections now that
        the task class (and every other class) is known.

        An empty value (``--limit ''``, ``--Report-limit=``) is as if the option were not
        given, as Luigi's parser reads it: the parameter keeps its configured value or default,
        so a cron line's ``--limit "$LIMIT"`` with ``LIMIT`` unset runs the task Luigi ran
        (same task id, same outputs) rather than failing on ``''`` or taking ``None``.
        """
        root_params = task_cls.declared_params()
        family = task_cls.get_task_family()
        for name, value in self._pairs:
            key = name.replace("-", "_")
            if key in _core_params():
                continue
            if key in root_params:
                if value != "":
                    self.root[key] = _flag(name, value, root_params[key])
                continue
            section, param = self._split_section(name, sections)
            if section is not None and param in self.sections.get(section, {}):
                continue
            if section is None:
                choices = [*root_params, *(f"{s}-{p}" for s, ps in sections.items() for p in ps)]
                raise UnknownParameterError(
                    f"{family}: unknown parameter --{name}.{did_you_mean(key, choices)} "
                    f"Parameters of {family}: {', '.join('--' + p.replace('_', '-') for p in root_params) or '(none)'}"
                )
            if value != "":
                self.sections.setdefault(section, {})[param] = _flag(name, value, sections[section][param])

    @staticmethod
    def _split_section(name: str, sections: dict[str, Any]) -> tuple[str | None, str]:
        best: tuple[str | None, str] = (None, "")
        for section, params in sections.items():
            for candidate in (section, section.replace("_", "-")):
                prefix = candidate + "-"
                if name.startswith(prefix):
                    param = name[len(prefix) :].replace("-", "_")
                    if param in params and (best[0] is None or len(section) > len(best[0])):
                        best = (section, param)
        return best

    def exit_if_no_task(self) -> None:
        """``--help``/``--help-all`` print Luigi's usage and run nothing; without a task name
        there is nothing to run either. Asked once ``--module`` is imported, as Luigi does, so
        the help lists the module's tasks."""
        asked = self.sections.get(GLOBAL_SECTION, {})
        help_all = _true(asked.get("help_all"))
        if help_all or _true(asked.get("help")):
            print(help_text(self.task_name, help_all=help_all))
            raise SystemExit(0)
        if self.task_name is None:
            raise SystemExit("No task specified")

    def get_task_obj(self) -> Any:
        import importlib

        from .task_register import Register

        # ``interface`` builds on this parser: looked up here, not imported, to make no circle.
        interface = importlib.import_module(f"{__package__}.interface")
        interface._import_modules(self.modules)  # as Luigi's parser does: luigi.tools.deps relies on it
        if self.task_name is None:
            raise ParameterError("no task given: luigi [options] TaskName [--param value]")
        cls = Register.get_task_cls(self.task_name)
        try:
            self.bind(cls, _all_sections())
        except ParameterError as exc:  # an unknown option, an option without its value
            _usage_error(exc)
        return cls(**self.root)


def _usage_error(exc: Exception) -> NoReturn:
    """A command-line error (``--n`` with no value, an unknown option, a second task name), as
    argparse reports it for Luigi: one line and exit status 2, not a traceback and the
    ``unhandled_exception`` code."""
    print(f"luigi: error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None


def _core_params() -> dict[str, Any]:
    """The parameters of Luigi's ``core`` configuration class (its global options)."""
    from .task_register import Register

    core = Register._get_reg().get(GLOBAL_SECTION)
    return dict(core.declared_params()) if isinstance(core, type) else {}  # type: ignore[attr-defined]


def _flag(name: str, value: str | None, param: Any) -> str:
    if value is not None:
        return value
    if getattr(param, "type_name", "") == "bool":
        return "true"
    raise ParameterError(f"--{name} needs a value")


def _all_sections() -> dict[str, Any]:
    from .task_register import Register

    out: dict[str, Any] = {}
    for cls in Register._reg:
        out[cls.get_task_family()] = cls.declared_params()  # type: ignore[attr-defined]
    return out


def _true(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes", "on")


def help_text(root_task: str | None, *, help_all: bool = False) -> str:
    """Luigi's usage: the common options and the root task's parameters (``--day`` and
    ``--Count-day``), or every option of every class with ``help_all``."""
    from .task_register import Register

    parser = argparse.ArgumentParser(prog="luigi", add_help=False, conflict_handler="resolve")
    parser.add_argument(
        "root_task", nargs="?", help="Task family to run. Is not optional.", metavar="Required root task"
    )
    for task_cls in Register._reg:
        family = task_cls.get_task_family()  # type: ignore[attr-defined]
        without_section = not getattr(task_cls, "use_cmdline_section", True)
        for name, param in task_cls.declared_params().items():  # type: ignore[attr-defined]
            is_root = family == root_task
            shown = is_root or help_all or getattr(param, "always_in_help", False)
            text = (param.description or None) if shown else argparse.SUPPRESS
            flag = name if without_section else f"{family}_{name}"
            parser.add_argument("--" + flag.replace("_", "-"), help=text, **_option(param, f"{family}_{name}"))
            if is_root:
                parser.add_argument("--" + name.replace("_", "-"), help=text, **_option(param, name))
    return parser.format_help()


def _option(param: Any, dest: str) -> dict[str, Any]:
    """How argparse shows a parameter: a flag for a bool, else an option with a value."""
    return {"action": "store_true" if getattr(param, "type_name", "") == "bool" else "store", "dest": dest}
