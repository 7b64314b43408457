"""Only what pyproject.toml cannot say: install ``ductwork-compat.pth`` beside the packages.

The .pth file makes ``import airflow`` / ``import luigi`` fall back to Ductwork's shims when the
real packages are absent, including for ``python dag_file.py`` (docs/adr/0007-compat-shims.md).
Regular wheels get it through ``build_py``; editable installs (``make venv``) through a wrapper
around the editable wheel's strategy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "ductwork-compat.pth"
SOURCE = Path(__file__).parent / "src" / PTH


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(str(SOURCE), str(Path(self.build_lib) / PTH))

    def get_outputs(self, include_bytecode: int = 1) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]


commands: dict[str, Any] = {"build_py": BuildPyWithPth}

try:
    from setuptools.command.editable_wheel import editable_wheel

    class EditableWithPth(editable_wheel):
        def _select_strategy(self, *args: Any, **kwargs: Any) -> Any:
            return _AddPth(super()._select_strategy(*args, **kwargs))

    class _AddPth:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __call__(self, wheel: Any, files: Any, mapping: Any) -> None:
            self.inner(wheel, files, mapping)
            wheel.writestr(PTH, SOURCE.read_bytes())

        def __enter__(self) -> Any:
            self.inner.__enter__()
            return self

        def __exit__(self, *exc: Any) -> Any:
            return self.inner.__exit__(*exc)

    commands["editable_wheel"] = EditableWithPth
except ImportError:  # an old setuptools without PEP 660: the .pth comes with regular installs only
    pass

setup(cmdclass=commands)
