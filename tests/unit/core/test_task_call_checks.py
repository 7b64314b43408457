"""A ``@task`` call in a flow is checked against the function's parameters at definition time:
a wrong call fails naming the task, whatever the shape of the function. The quick check of
functions with only named parameters must say exactly what ``Signature.bind_partial`` says."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ductwork import Flow, task
from ductwork.core.context import CONTEXT_NAMES
from ductwork.core.decorators import TaskFunction
from ductwork.errors import DefinitionError

P = inspect.Parameter
NAMES = ["a", "b", "c", "ti", "ds", "x_1"]


def reference(signature: inspect.Signature, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The check as Python's own binding defines it: None when the call is fine, else the message."""
    try:
        bound = signature.bind_partial(*args, **kwargs).arguments
    except TypeError as exc:
        return f"task {task_id!r}: {exc}"
    missing = [
        p.name
        for p in signature.parameters.values()
        if p.default is P.empty
        and p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)
        and p.name not in bound
        and p.name not in CONTEXT_NAMES
    ]
    return f"task {task_id!r}: missing argument(s) {', '.join(map(repr, missing))}" if missing else None


@st.composite
def signatures(draw: st.DrawFn) -> inspect.Signature:
    """Any valid signature over a few names, most of them of named parameters only."""
    order = {P.POSITIONAL_ONLY: 0, P.POSITIONAL_OR_KEYWORD: 1, P.KEYWORD_ONLY: 2}
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    kinds = sorted(
        (
            draw(st.sampled_from([P.POSITIONAL_OR_KEYWORD] * 3 + [P.KEYWORD_ONLY] * 2 + [P.POSITIONAL_ONLY]))
            for _ in names
        ),
        key=order.__getitem__,
    )
    params: list[inspect.Parameter] = []
    defaulted = False
    for name, kind in zip(names, kinds, strict=True):
        has_default = draw(st.booleans()) or (defaulted and kind is not P.KEYWORD_ONLY)
        defaulted = defaulted or has_default
        params.append(P(name, kind, default=0 if has_default else P.empty))
    if draw(st.integers(0, 4)) == 0:
        position = len([p for p in params if p.kind is not P.KEYWORD_ONLY])
        params.insert(position, P("rest", P.VAR_POSITIONAL))
    if draw(st.integers(0, 4)) == 0:
        params.append(P("extra", P.VAR_KEYWORD))
    return inspect.Signature(params)


@settings(max_examples=400, deadline=None)
@given(
    signature=signatures(),
    positional=st.integers(min_value=0, max_value=6),
    keywords=st.lists(st.sampled_from([*NAMES, "rest", "extra", "unknown"]), unique=True, max_size=4),
)
@example(  # a keyword for a parameter given by position
    signature=inspect.Signature([P("a", P.POSITIONAL_OR_KEYWORD), P("b", P.POSITIONAL_OR_KEYWORD)]),
    positional=1,
    keywords=["a"],
)
def test_the_check_of_a_call_says_what_binding_says(
    signature: inspect.Signature, positional: int, keywords: list[str]
) -> None:
    def function(*args: Any, **kwargs: Any) -> None:
        return None

    function.__signature__ = signature  # type: ignore[attr-defined]
    decorated = TaskFunction(function, task_id="t")
    args = tuple(range(positional))
    kwargs = dict.fromkeys(keywords, 1)
    expected = reference(signature, "t", args, kwargs)
    for _ in range(2):  # the first call works out the function's shape, the second uses it
        if expected is None:
            decorated._check_arguments(args, kwargs)
        else:
            with pytest.raises(DefinitionError) as caught:
                decorated._check_arguments(args, kwargs)
            assert str(caught.value) == expected


def test_a_wrong_call_in_a_flow_names_the_task_and_the_argument() -> None:
    @task
    def add(x: int, y: int, ti: Any = None) -> int:
        return x + y

    with pytest.raises(DefinitionError, match=r"task 'add': missing argument\(s\) 'y'"), Flow("calls"):
        add(1)
    with pytest.raises(DefinitionError, match="task 'add': got an unexpected keyword argument 'z'"), Flow("calls2"):
        add(1, z=2)
    with pytest.raises(DefinitionError, match="task 'add': multiple values for argument 'x'"), Flow("calls3"):
        add(1, x=2)
    with pytest.raises(DefinitionError, match="task 'add': too many positional arguments"), Flow("calls4"):
        add(1, 2, 3, 4)
    with Flow("fine") as flow:
        add(1, y=2)
        add(x=1, y=2)
    assert set(flow.tasks) == {"add", "add__1"}


def test_every_name_a_try_puts_in_the_context_may_be_asked_for_without_a_default() -> None:
    """``CONTEXT_NAMES`` is the one list of the context's names a ``@task`` call need not give:
    it must hold what a try's context really has (``clock`` and ``store`` are the engine's)."""
    from ductwork.testing import run_flow

    with Flow("context_names") as f:

        @task
        def keys(context: Any) -> list[str]:
            return sorted(context)

        @task
        def reads(n: int, var: Any, conn: Any, secrets: Any, ds: str) -> str:
            # `var`, `conn` and `secrets` are in every try's context, but a call leaving them
            # out was refused ("missing argument(s) 'var', 'conn', 'secrets'") outside DAG files
            return f"{n} {type(var).__name__} {ds}"

        keys()
        reads(1)
        reads.partial().expand(n=[2])
    result = run_flow(f, logical_date="2024-01-31")
    assert set(result.result("keys")) - {"clock", "store"} <= CONTEXT_NAMES
    assert result.result("reads") == "1 VariableAccessor 2024-01-31"
    assert result.result("reads__1") == ["2 VariableAccessor 2024-01-31"]
