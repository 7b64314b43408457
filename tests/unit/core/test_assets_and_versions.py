"""Asset conditions, schedules on assets, message payloads and fingerprints: property-based where
the input space is large."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ductwork import Asset, AssetOrTime, Flow, PythonOperator
from ductwork.core.assets import AssetAll, AssetAny, AssetCondition, condition_from_dict
from ductwork.core.versioning import Fingerprint, compare
from ductwork.errors import DefinitionError, ParameterError
from ductwork.services.messages import message_id_of, parse_payload

URIS = [f"s3://lake/t{i}" for i in range(5)]


def conditions() -> st.SearchStrategy[AssetCondition]:
    leaves = st.sampled_from(URIS).map(Asset)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: AssetAny(*cs)),
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: AssetAll(*cs)),
        ),
        max_leaves=8,
    )


def truth(cond: AssetCondition, updated: set[str]) -> bool:
    if isinstance(cond, Asset):
        return cond.uri in updated
    parts = [truth(c, updated) for c in cond.conditions]  # type: ignore[attr-defined]
    return any(parts) if isinstance(cond, AssetAny) else all(parts)


@given(conditions(), st.sets(st.sampled_from(URIS)))
def test_a_condition_survives_serialization_and_means_what_it_says(cond: AssetCondition, updated: set[str]) -> None:
    again = condition_from_dict(json.loads(json.dumps(cond.to_dict())))
    assert again == cond and again.uris() == cond.uris()
    assert cond.evaluate(updated) == truth(cond, updated) == again.evaluate(updated)
    assert cond.evaluate(set(cond.uris()))  # every asset updated: any condition holds


def test_operators_and_lists_build_conditions() -> None:
    a, b, c = (Asset(u) for u in URIS[:3])
    assert (a | b | c) == AssetAny(a, b, c) and (a & b & c) == AssetAll(a, b, c)
    assert (a | (b & c)).describe() == "s3://lake/t0 | (s3://lake/t1 & s3://lake/t2)"
    assert Asset("/data/x.csv").uri == "file:///data/x.csv" and Asset("s3://x") == Asset("s3://x", extra={"k": 1})
    with Flow("f", schedule=[a, b]) as f:
        PythonOperator(task_id="t", python_callable=lambda: None, outlets=[a], inlets=["s3://lake/t4"])
    graph = f.to_graph()
    assert graph.meta.assets == {"all": [{"asset": URIS[0]}, {"asset": URIS[1]}]} and graph.meta.schedule == "None"
    assert graph.nodes["t"].extra == {
        "callable": graph.nodes["t"].extra["callable"],
        "outlets": [URIS[0]],
        "inlets": [URIS[4]],
    }
    timed = Flow("g", schedule=AssetOrTime("@daily", a | b)).to_graph().meta
    assert timed.schedule == "@daily" and timed.assets == {"any": [{"asset": URIS[0]}, {"asset": URIS[1]}]}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Asset("no-scheme"), "has no scheme"),
        (lambda: Asset("s3://a b"), "whitespace"),
        (lambda: Flow("f", schedule=[Asset("s3://a"), "@daily"]), "must hold only Asset objects"),
        (lambda: PythonOperator(task_id="t", python_callable=print, outlets=[3]), "outlets must hold Asset"),
        (lambda: PythonOperator(task_id="t", python_callable=print, cache="always"), "cache='always'"),
        (lambda: condition_from_dict({"xor": []}), "not an asset condition"),
    ],
)
def test_bad_asset_definitions_are_refused_with_a_clear_error(build: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        build()


@given(st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=10), st.booleans())))
def test_a_json_object_payload_is_the_parameters(params: dict[str, Any]) -> None:
    assert parse_payload(json.dumps(params).encode()) == params


@given(st.one_of(st.lists(st.integers()), st.integers(), st.text(min_size=1).filter(lambda t: t.strip() != "")))
def test_anything_but_a_json_object_is_refused(value: Any) -> None:
    raw = json.dumps(value).encode() if not isinstance(value, str) else value.encode()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return
    with pytest.raises(ParameterError):
        parse_payload(raw)


def test_message_ids() -> None:
    assert message_id_of("abc") == "abc"
    assert message_id_of("x" * 500).startswith("sha256:") and len(message_id_of("x" * 500)) < 200
    assert message_id_of("", "mqtt:t", "{}") == message_id_of(None, "mqtt:t", "{}") != message_id_of("", "mqtt:t", "[]")


def test_fingerprint_changes_are_named() -> None:
    old = Fingerprint({"code:f": "1"}, {"param:n": "a", "param:m": "b"}, {"task:up": "x"})
    new = Fingerprint({"code:f": "2"}, {"param:n": "a"}, {"task:up": "x", "asset:s3://a": "v"})
    assert [c.describe() for c in compare(new, old)] == [
        "code changed: f",
        "parameter 'm' removed",
        "input 's3://a' added",
    ]
    assert compare(old, old) == [] and old.key == Fingerprint.from_dict(old.to_dict()).key != new.key


def test_an_in_process_run_records_its_asset_updates(cli: Any, tmp_path: Any) -> None:
    """``ductwork run`` records the updates of its tasks' outlets, so the scheduler's next look
    starts the flows scheduled on them."""
    (tmp_path / "flows.py").write_text(
        "from ductwork import Asset, Flow, PythonOperator\n"
        "A = Asset('s3://lake/local')\n"
        "def write(outlet_events):\n"
        "    outlet_events[A].extra['rows'] = 2\n"
        "with Flow('local_producer') as producer:\n"
        "    PythonOperator(task_id='write', python_callable=write, outlets=[A])\n"
        "with Flow('local_consumer', schedule=[A]) as consumer:\n"
        "    PythonOperator(task_id='read', python_callable=lambda: None)\n"
    )
    assert cli("run", "flows.py:local_consumer", "--no-progress").exit_code == 0  # registers the consumer
    assert cli("run", "flows.py:local_producer", "--no-progress").exit_code == 0
    shown = json.loads(cli("assets", "show", "s3://lake/local", "--json").output)
    assert shown["producers"] == [["local_producer", "write"]] and shown["consumers"] == ["local_consumer"]
    assert shown["events"][0]["extra"] == {"rows": 2} and shown["events"][0]["flow_id"] == "local_producer"

    from ductwork.services.assets import create_asset_runs
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine

    engine = create_engine(Settings.load().db_url)
    try:
        (run,) = create_asset_runs(engine)
    finally:
        engine.dispose()
    assert run.flow_id == "local_consumer" and run.triggered_by["asset_events"][0]["extra"] == {"rows": 2}


def test_input_versions_follow_the_data(tmp_path: Any) -> None:
    import os

    import sqlalchemy as sa

    from ductwork.engine.asset_versions import MISSING, asset_version

    path = tmp_path / "raw.csv"
    by_stat, by_content = Asset(str(path)), Asset(str(path), extra={"version": "content"})
    assert asset_version(by_stat) == MISSING
    path.write_text("a,b\n1,2\n")
    first = (asset_version(by_stat), asset_version(by_content))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # touched, same data
    assert asset_version(by_stat) != first[0] and asset_version(by_content) == first[1]
    path.write_text("a,b\n1,3\n")
    assert asset_version(by_content) != first[1]

    db = f"sqlite:///{tmp_path / 'w.db'}"
    engine = sa.create_engine(db)
    with engine.begin() as conn:
        conn.exec_driver_sql("create table orders (id integer)")
    table = Asset(db, extra={"version_query": "select count(*) from orders"})
    empty = asset_version(table)
    with engine.begin() as conn:
        conn.exec_driver_sql("insert into orders values (1)")
    assert asset_version(table) != empty
    engine.dispose()

    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/lake/obj.json", b"{}")
    obj = Asset("memory://lake/obj.json")
    before = asset_version(obj)
    fs.pipe("/lake/obj.json", b'{"more": 1}')
    assert before != asset_version(obj) and asset_version(Asset("memory://lake/none")) == MISSING
    assert asset_version(Asset("nosuchscheme://x")).startswith("unreadable")


def test_cache_on_a_flow_of_class_tasks_is_refused_with_the_reason() -> None:
    from ductwork import Task

    class Daily(Task):
        def run(self) -> None:
            pass

    with pytest.raises(DefinitionError, match=r"Flow.from_task\(Daily\): cache= does not apply to class tasks"):
        Flow.from_task(Daily, schedule=None, cache="content")

    class Cached(Task):  # on the class itself it was ignored in silence
        cache = "content"

        def run(self) -> None:
            pass

    with pytest.raises(DefinitionError, match=r"Cached.cache = 'content': cache= does not apply to class tasks"):
        Flow.from_task(Cached, schedule=None).to_graph()


def test_a_class_task_with_outlets_records_their_updates(cli: Any, tmp_path: Any) -> None:
    """A class task's ``outlets = [...]`` (README: "class tasks work the same way") were listed as
    its asset's producer, but a successful run recorded no update, so flows scheduled on the
    asset never started. A run that finds the task complete (its output exists) records none."""
    (tmp_path / "flows.py").write_text(
        "from ductwork import Asset, Flow, LocalTarget, Task\n"
        "A = Asset('s3://lake/class')\n"
        f"OUT = {str(tmp_path / 'events.csv')!r}\n"
        "class Events(Task):\n"
        "    outlets = [A]\n"
        "    def output(self):\n"
        "        return LocalTarget(OUT)\n"
        "    def run(self):\n"
        "        with self.output().open('w') as fh:\n"
        "            fh.write('x')\n"
        "producer = Flow.from_task(Events, flow_id='class_producer')\n"
    )
    assert cli("run", "flows.py:class_producer", "--no-progress").exit_code == 0
    shown = json.loads(cli("assets", "show", "s3://lake/class", "--json").output)
    assert shown["producers"] == [["class_producer", "Events"]]
    assert [(e["flow_id"], e["task_id"]) for e in shown["events"]] == [("class_producer", "Events")]
    assert cli("run", "flows.py:class_producer", "--no-progress").exit_code == 0  # complete: not run
    assert len(json.loads(cli("assets", "show", "s3://lake/class", "--json").output)["events"]) == 1
