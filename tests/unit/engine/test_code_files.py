"""The files a flow's code comes from (recorded with each run, compared by ``ductwork runs
diff``): its own file, and the user modules of the callables its operators hold, alone or in a
list (callbacks), whatever else the operators hold."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ductwork.engine.code_info import code_files
from ductwork.loading import load_file


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "work_helpers.py").write_text("def work():\n    return 1\n")
    (tmp_path / "alerting_helpers.py").write_text("def alert(context):\n    return None\n")
    (tmp_path / "unused_helpers.py").write_text("VALUE = 1\n")
    (tmp_path / "coded.py").write_text(
        "import unused_helpers\n"
        "from alerting_helpers import alert\n"
        "from work_helpers import work\n"
        "from ductwork import Flow, PythonOperator\n"
        "with Flow('coded') as coded:\n"
        "    PythonOperator(task_id='a', python_callable=work, on_failure_callback=[alert],\n"
        "                   op_args=[1, 'x', None, 2.5], op_kwargs={'k': 'v'}, retries=2)\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in ("work_helpers", "alerting_helpers", "unused_helpers"):
        sys.modules.pop(name, None)


def test_a_flows_code_is_its_file_and_the_modules_of_its_callables(folder: Path) -> None:
    loaded = load_file(folder / "coded.py")
    assert not loaded.errors
    (flow,) = loaded.flows
    names = {path.name for path in code_files(flow, loaded.graphs["coded"])}
    assert names == {"coded.py", "work_helpers.py", "alerting_helpers.py"}
