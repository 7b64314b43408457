"""``luigi.contrib.external_program``: ``ExternalProgramTask`` and ``ExternalPythonProgramTask``.

The one contrib module nearly every Luigi code base imports (it is Luigi's way to run a shell
script or a program as a task), and one that needs no third-party service: it was refused with
the other contrib modules, so such a module did not run unchanged though Ductwork runs external
programs itself. As Luigi's: ``program_args()``, ``program_environment()``, ``capture_output``,
``always_log_stderr``, the ``Running command:``/``Program stdout:``/``Program stderr:`` lines of
the ``luigi-interface`` logger, and ``ExternalProgramRunError`` on a non-zero exit.

What differs: the program runs in a process group of its own that is stopped with the task (a
``worker_timeout``, Ctrl-C, a build told to stop), its children too; a ``tracking_url_pattern``
is looked for in the captured stream once the program has ended, not while it runs; and the
error's text does not list the program's environment (Luigi's prints every variable, secrets
included, into logs and failure e-mails), which stays in ``.env``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from typing import IO, Any

from ductwork.core.subprocesses import command_ended, start_command, stop_group

from .. import parameter as _p
from ..parameter import ParameterVisibility
from ..task import Task

logger = logging.getLogger("luigi-interface")


class ExternalProgramRunError(RuntimeError):
    """The program exited with a code other than 0: its command, output and environment."""

    def __init__(
        self,
        message: str,
        args: list[str],
        env: dict[str, str] | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
    ) -> None:
        super().__init__(message, args, env, stdout, stderr)
        self.message = message
        self.args = args  # type: ignore[assignment]  # Luigi keeps the command here
        self.env = env
        self.out = stdout
        self.err = stderr

    def __str__(self) -> str:
        info = self.message
        info += "\nCOMMAND: {}".format(" ".join(self.args))
        info += "\nSTDOUT: {}".format(self.out or "[empty]")
        info += "\nSTDERR: {}".format(self.err or "[empty]")
        return info


class ExternalProgramTask(Task):
    """Runs ``program_args()`` (the program first) with ``program_environment()``."""

    capture_output = _p.BoolParameter(default=True, significant=False, positional=False)
    stream_for_searching_tracking_url = _p.ChoiceParameter(
        var_type=str,
        choices=["none", "stdout", "stderr"],
        default="none",
        significant=False,
        positional=False,
        visibility=ParameterVisibility.HIDDEN,
        description="Stream for searching tracking URL",
    )
    tracking_url_pattern = _p.OptionalParameter(
        default=None,
        significant=False,
        positional=False,
        visibility=ParameterVisibility.HIDDEN,
        description="Regex pattern used for searching URL in the logs of the external program",
    )

    def program_args(self) -> list[Any]:
        raise NotImplementedError

    def program_environment(self) -> dict[str, str]:
        return os.environ.copy()

    @property
    def always_log_stderr(self) -> bool:
        return True

    def build_tracking_url(self, logs_output: str) -> str:
        return logs_output

    def _clean_output_file(self, file_object: IO[bytes]) -> str:
        file_object.seek(0)
        return "".join(line.decode("utf-8", errors="replace") for line in file_object.readlines())

    def run(self) -> None:
        args = [str(a) for a in self.program_args()]
        logger.info("Running command: %s", " ".join(args))
        env = self.program_environment()
        with contextlib.ExitStack() as files:
            out_file = err_file = None
            if self.capture_output:
                out_file = files.enter_context(tempfile.TemporaryFile())
                err_file = files.enter_context(tempfile.TemporaryFile())
            proc = start_command(args, env=env, stdout=out_file, stderr=err_file)
            self._proc = proc
            try:
                proc.wait()
            except BaseException:  # the task is stopped (a timeout, Ctrl-C): the program goes too
                stop_group(proc)
                raise
            finally:
                command_ended(proc)
            success = proc.returncode == 0
            stdout = stderr = None
            if out_file is not None and err_file is not None:
                stdout, stderr = self._clean_output_file(out_file), self._clean_output_file(err_file)
                if stdout:
                    logger.info("Program stdout:\n%s", stdout)
                if stderr and (self.always_log_stderr or not success):
                    logger.info("Program stderr:\n%s", stderr)
                self._find_tracking_url(stdout, stderr)
        if not success:
            raise ExternalProgramRunError(
                f"Program failed with return code={proc.returncode}:", args, env=env, stdout=stdout, stderr=stderr
            )

    def _find_tracking_url(self, stdout: str, stderr: str) -> None:
        stream = {"stdout": stdout, "stderr": stderr}.get(self.stream_for_searching_tracking_url)
        if stream is None or self.tracking_url_pattern is None:
            return
        match = re.search(self.tracking_url_pattern, stream)
        if match and self.set_tracking_url is not None:  # set by the worker that runs the task
            self.set_tracking_url(self.build_tracking_url(match.group(1)))

    def on_kill(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None:
            stop_group(proc)


class ExternalPythonProgramTask(ExternalProgramTask):
    """An external Python program, in a virtualenv and with more of ``PYTHONPATH`` if given."""

    virtualenv = _p.OptionalParameter(
        default=None,
        positional=False,
        description="path to the virtualenv directory to use. It should point to "
        "the directory containing the ``bin/activate`` file used for enabling the virtualenv.",
    )
    extra_pythonpath = _p.OptionalParameter(
        default=None,
        positional=False,
        description="extend the search path for modules by prepending this value to the "
        "``PYTHONPATH`` environment variable.",
    )

    def program_environment(self) -> dict[str, str]:
        env = super().program_environment()
        if self.extra_pythonpath:
            env["PYTHONPATH"] = ":".join([self.extra_pythonpath, env.get("PYTHONPATH", "")])
        if self.virtualenv:
            env.update(
                {"PATH": ":".join([f"{self.virtualenv}/bin", env.get("PATH", "")]), "VIRTUAL_ENV": self.virtualenv}
            )
            env.pop("PYTHONHOME", None)
        return env
