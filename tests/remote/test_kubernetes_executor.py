"""``executor = "kubernetes"`` against a stand-in of the Kubernetes API (no cluster runs here):
the executor makes a pod for each try it is handed, finds its pods again by the label it gave
them, and fails a try whose pod failed, or stayed Pending past ``kubernetes_pending_timeout``,
with the pod's reason. (It made no pod at all: every try waited for "a live worker on queue
'default'"; and a scheduler whose name is long lost sight of every pod it made.)"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client

from ductwork import BashOperator, Flow
from ductwork.core.context import RunInfo
from ductwork.core.states import TaskState as S
from ductwork.engine.executor import TryFinished, TryKey, TryRequest
from ductwork.engine.remote.kube_executor import KubernetesExecutor
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, transaction
from ductwork.store.repo import runs as run_repo

T0 = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


class PodApi:
    """The three calls of ``CoreV1Api`` the executor makes, with pods whose phase the test sets."""

    def __init__(self) -> None:
        self.pods: dict[str, client.V1Pod] = {}
        self.phases: dict[str, client.V1PodStatus] = {}
        self.down = False
        """Every call fails as the client's do when the API server is away."""

    def _answer(self) -> None:
        if self.down:
            raise urllib3.exceptions.MaxRetryError(None, "/api/v1/namespaces/default/pods", "Connection refused")

    def create_namespaced_pod(self, namespace: str, pod: client.V1Pod) -> client.V1Pod:
        self._answer()
        if f"{namespace}/{pod.metadata.name}" in self.pods:
            raise client.ApiException(status=409, reason="AlreadyExists")
        self.pods[f"{namespace}/{pod.metadata.name}"] = pod
        self.phases[f"{namespace}/{pod.metadata.name}"] = client.V1PodStatus(phase="Pending")
        return pod

    def list_namespaced_pod(self, namespace: str, label_selector: str = "", limit: int | None = None) -> Any:
        """``label_selector``: ``name=value``, or ``name`` (the label is there)."""
        self._answer()
        name, equals, value = label_selector.partition("=")
        found = [
            client.V1Pod(metadata=pod.metadata, status=self.phases[key])
            for key, pod in self.pods.items()
            if key.startswith(f"{namespace}/")
            and (pod.metadata.labels.get(name) == value if equals else name in pod.metadata.labels)
        ]
        return client.V1PodList(items=found[:limit] if limit else found)

    def delete_namespaced_pod(self, name: str, namespace: str) -> None:
        self.pods.pop(f"{namespace}/{name}", None)


def _setup(
    tmp_path: Path, *, train_config: dict[str, Any] | None = None, **settings: Any
) -> tuple[KubernetesExecutor, PodApi, list[TryRequest]]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    flows = tmp_path / "flows"
    flows.mkdir()
    engine = create_engine(url)
    migrate.upgrade(engine)
    with Flow("ml", schedule=None) as flow:
        BashOperator(task_id="train", bash_command="true", executor_config=train_config)
        BashOperator(task_id="score", bash_command="true")
    graph = flow.to_graph()
    with transaction(engine) as conn:
        run_repo.create_run(
            conn,
            graph,
            run_id="manual_1",
            logical_date=T0,
            states=dict.fromkeys(graph.nodes, S.QUEUED),
            tries=dict.fromkeys(graph.nodes, 1),
        )
    base = Settings.load(environ={"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_FLOWS_FOLDER": str(flows)})
    chosen = dataclasses.replace(
        base, database_url=url, executor="kubernetes", kubernetes_image="registry/etl:1", **settings
    )
    api = PodApi()
    executor = KubernetesExecutor(chosen, engine=engine, api=api, reconcile_interval=0.0)
    # A scheduler on a host with a long name: the label of its pods is cut to 63 characters.
    executor.scheduler_id = "etl-scheduler-" + "x" * 48 + "-4242"
    run = RunInfo("ml", "manual_1", T0, T0, T0)
    requests = [
        TryRequest(TryKey(run.key, task_id, 1), graph.nodes[task_id], run, (), None, max_tries=1)
        for task_id in ("train", "score")
    ]
    return executor, api, requests


def _ends(executor: KubernetesExecutor, count: int) -> list[TryFinished]:
    ends: list[TryFinished] = []
    deadline = time.monotonic() + 30
    while len(ends) < count and time.monotonic() < deadline:
        ends += [e for e in executor.wait(0.05) if isinstance(e, TryFinished)]
    return ends


def test_each_try_gets_a_pod_and_a_failed_pod_fails_its_try_with_the_pods_reason(tmp_path: Path) -> None:
    executor, api, requests = _setup(tmp_path)
    executor.start()
    for request in requests:
        executor.submit(request)
    executor.submitted()
    assert len(api.pods) == 2, "no pod was made for the tries"
    train = next(key for key, pod in api.pods.items() if pod.metadata.labels.get("ductwork/task") == "train")
    api.phases[train] = client.V1PodStatus(
        phase="Failed",
        container_statuses=[
            client.V1ContainerStatus(
                name="try",
                image="registry/etl:1",
                image_id="x",
                ready=False,
                restart_count=0,
                state=client.V1ContainerState(
                    terminated=client.V1ContainerStateTerminated(exit_code=3, reason="Error")
                ),
            )
        ],
    )
    (ended,) = _ends(executor, 1)
    assert ended.key.task_id == "train" and ended.outcome.state == S.FAILED
    assert "exited 3" in (ended.outcome.error or "")
    executor.shutdown()


def test_a_pod_pending_past_the_timeout_fails_its_try_with_the_pods_reason(tmp_path: Path) -> None:
    executor, api, requests = _setup(tmp_path, kubernetes_pending_timeout=0.2)
    executor.start()
    executor.submit(requests[0])
    executor.submitted()
    (key,) = api.pods
    waiting = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason="ImagePullBackOff", message='pull "registry/etl:1": not found')
    )
    api.phases[key] = client.V1PodStatus(
        phase="Pending",
        container_statuses=[
            client.V1ContainerStatus(
                name="try", image="registry/etl:1", image_id="", ready=False, restart_count=0, state=waiting
            )
        ],
    )
    (ended,) = _ends(executor, 1)
    assert ended.outcome.state == S.FAILED
    assert "Pending" in (ended.outcome.error or "") and "ImagePullBackOff" in (ended.outcome.error or "")
    assert not api.pods  # the stuck pod is deleted
    executor.shutdown()


def test_a_tries_message_carries_class_parameters_but_none_of_ductworks_secrets(tmp_path: Path) -> None:
    """What a try's message (a Celery message in the broker's queues, a pod's spec) carries for
    class parameters: the ``DUCTWORK_<TASK>_<PARAM>`` variables and the config file's task
    tables, not the database URL, the Fernet key, connections or the ``[ductwork]`` table."""
    import json

    from ductwork.core.config import ParamSources

    executor, api, requests = _setup(tmp_path)
    config = tmp_path / "ductwork.toml"
    config.write_text('[ductwork]\nmetrics_token = "tok-8Jw1"\n\n[Train]\nepochs = 7\n')
    executor.param_sources = ParamSources.load(
        config_path=config,
        environ={
            "DUCTWORK_DATABASE_URL": "postgresql://etl:db-pw-3Xc5@db/meta",
            "DUCTWORK_FERNET_KEY": "fernet-2Lp0",
            "DUCTWORK_CONN_WAREHOUSE": "postgresql://etl:hunter2@db/wh",
            "DUCTWORK_VAR_API_TOKEN": "var-9Qz4",
            "DUCTWORK_TRAIN_RATE": "0.5",
        },
    )
    executor.start()
    executor.submit(requests[0])
    executor.submitted()
    (pod,) = api.pods.values()
    spec = json.dumps(client.ApiClient().sanitize_for_serialization(pod))
    for secret in ("db-pw-3Xc5", "fernet-2Lp0", "hunter2", "var-9Qz4", "tok-8Jw1"):
        assert secret not in spec
    assert "DUCTWORK_TRAIN_RATE" in spec and "epochs" in spec
    executor.shutdown()


def test_a_try_whose_executor_config_makes_no_pod_fails_alone(tmp_path: Path) -> None:
    """A typo in one task's ``executor_config`` raised out of the executor: the scheduler stopped
    (exit 2), and again at every start until the run was cancelled, other flows' runs stalled."""
    executor, api, requests = _setup(tmp_path, train_config={"node_selectr": {"pool": "gpu"}})
    executor.start()
    for request in requests:
        executor.submit(request)
    executor.submitted()
    (ended,) = _ends(executor, 1)
    assert ended.key.task_id == "train" and ended.outcome.state == S.FAILED
    assert "node_selectr" in (ended.outcome.error or "") and "executor_config" in (ended.outcome.error or "")
    assert [pod.metadata.labels.get("ductwork/task") for pod in api.pods.values()] == ["score"]
    executor.shutdown()


def _fail(api: PodApi, task_id: str) -> None:
    key = next(k for k, pod in api.pods.items() if pod.metadata.labels.get("ductwork/task") == task_id)
    api.phases[key] = client.V1PodStatus(phase="Failed", reason="Evicted", message="the node ran out of memory")


def test_an_api_outage_fails_no_try_and_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A stop of the API server of a second killed the scheduler (an uncaught MaxRetryError
    from the look at its pods), and an API that could not be reached was called "the broker"."""
    executor, api, requests = _setup(tmp_path)
    executor.start()
    executor.submit(requests[0])
    executor.submitted()
    api.down = True
    executor.submit(requests[1])
    executor.submitted()  # its pod cannot be made: it waits
    with caplog.at_level("INFO", logger="ductwork.scheduler"):
        for _ in range(10):
            assert executor.wait(0.02) == []
        said = [r.getMessage() for r in caplog.records if "Kubernetes API" in r.getMessage()]
        assert len(said) == 1 and said[0].startswith("the Kubernetes API is unreachable"), said
        assert not executor.can_hand_out()
        api.down = False
        deadline = time.monotonic() + 10
        while not executor.can_hand_out():
            assert time.monotonic() < deadline, "the executor never heard that the API was back"
            executor.wait(0.05)
        assert any("the Kubernetes API answers again" in r.getMessage() for r in caplog.records)
    deadline = time.monotonic() + 10
    while len(api.pods) < 2:  # the waiting try's pod is made once the API answers
        assert time.monotonic() < deadline, "the try that waited for the API got no pod"
        executor.wait(0.05)
    _fail(api, "train")
    (ended,) = _ends(executor, 1)
    assert ended.key.task_id == "train" and "Evicted" in (ended.outcome.error or "")
    executor.shutdown()


def test_a_scheduler_that_takes_over_finds_the_pods_of_the_one_that_died(tmp_path: Path) -> None:
    """The pods were looked up by the label of the scheduler looking: the new one found none of
    the old one's, and failed their tries with "its pod is gone" while the pods ran on."""
    first, api, requests = _setup(tmp_path)
    first.start()
    for request in requests:
        first.submit(request)
    first.submitted()
    assert len(api.pods) == 2
    second = KubernetesExecutor(first.settings, engine=first.engine, api=api, reconcile_interval=0.0)
    second.scheduler_id = "etl-scheduler-2"
    second.start()
    for request in requests:  # queued in the database: the new scheduler sends them again
        second.submit(request)
    second.submitted()
    assert len(api.pods) == 2  # the pods made already (409): no second pod
    for _ in range(5):
        assert second.wait(0.02) == [], "a try was failed though its pod is there"
    _fail(api, "score")
    (ended,) = _ends(second, 1)
    assert ended.key.task_id == "score" and "Evicted" in (ended.outcome.error or "")
    second.shutdown()


def test_a_kubeconfig_that_is_not_yaml_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KUBECONFIG naming a broken file: the scheduler died with yaml's own traceback."""
    from ductwork.errors import DuctworkError

    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nclusters: [unclosed\n")
    monkeypatch.setenv("KUBECONFIG", str(broken))
    from kubernetes.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(broken))  # read at its import
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    base = Settings.load(environ={"DUCTWORK_HOME": str(tmp_path / "home")})
    chosen = dataclasses.replace(base, database_url=url, executor="kubernetes", kubernetes_image="registry/etl:1")
    executor = KubernetesExecutor(chosen, engine=engine, reconcile_interval=0.0)
    with pytest.raises(DuctworkError, match="no kubeconfig could be read") as raised:
        executor.start()
    assert "KUBECONFIG" in str(raised.value)
    engine.dispose()
