"""A try renders a shallow copy of its operator (``execution.shallow_copy``): the same as
``copy.copy`` for every kind of class, faster for the plain ones operators are."""

from __future__ import annotations

import copy
from typing import Any

from ductwork import BashOperator, Flow, PythonOperator, task
from ductwork.engine.execution import shallow_copy


class WithSlots:
    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a, self.b = [1], "x"


class SlotsAndDict(WithSlots):
    __slots__ = ("__dict__",)

    def __init__(self) -> None:
        super().__init__()
        self.extra = {"k": 1}


class OwnCopy:
    def __init__(self) -> None:
        self.copies = 0

    def __copy__(self) -> OwnCopy:
        new = OwnCopy()
        new.copies = self.copies + 1
        return new


class OwnState:
    def __init__(self) -> None:
        self.value = 1
        self.cache = "not copied"

    def __getstate__(self) -> dict[str, Any]:
        return {"value": self.value}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, cache=None)


def _state(obj: Any) -> dict[str, Any]:
    slots = [s for klass in type(obj).__mro__ for s in vars(klass).get("__slots__", ()) if s != "__dict__"]
    return {**getattr(obj, "__dict__", {}), **{s: getattr(obj, s) for s in slots if hasattr(obj, s)}}


def test_shallow_copy_is_copy_copy_for_every_kind_of_class() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    with Flow("copies"):
        operators = [
            PythonOperator(task_id="py", python_callable=print, op_args=[1, 2]),
            BashOperator(task_id="bash", bash_command="echo {{ ds }}"),
            double.override(task_id="decorated")(21).operator,
        ]
    for original in [*operators, WithSlots(), SlotsAndDict(), OwnCopy(), OwnState()]:
        ours, theirs = shallow_copy(original), copy.copy(original)
        assert type(ours) is type(original) and ours is not original
        assert _state(ours).keys() == _state(theirs).keys()
        for name, value in _state(theirs).items():
            assert _state(ours)[name] == value
            if type(original).__name__ not in ("OwnCopy", "OwnState"):
                assert _state(ours)[name] is _state(original)[name]  # shallow: the same objects


def test_a_copy_can_be_changed_without_changing_the_definition() -> None:
    with Flow("copies"):
        original = BashOperator(task_id="bash", bash_command="echo 1")
    rendered = shallow_copy(original)
    rendered.bash_command = "echo 2"
    assert original.bash_command == "echo 1"
