"""Try pods and the manifests under deploy/, checked against the ``kubernetes`` client's own
models (no cluster runs here: nothing is sent to an API server)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from ductwork import Flow, PythonOperator
from ductwork.core.context import RunInfo
from ductwork.engine.executor import TryKey, TryRequest
from ductwork.engine.remote import wire
from ductwork.engine.remote.kube import pod_for_try, to_manifest
from ductwork.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[2]
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _noop() -> None:
    return None


def _payload(executor_config: dict, task_id: str = "Train_Model.v2") -> dict:
    with Flow("ml_pipeline") as flow:
        PythonOperator(task_id=task_id, python_callable=_noop, queue="gpu", executor_config=executor_config)
    node = flow.to_graph().nodes[task_id]
    at = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    run = RunInfo("ml_pipeline", "scheduled__2024-06-01T00:00:00+00:00", at, at, at, params={"day": at})
    request = TryRequest(TryKey(run.key, task_id, 3), node, run, ("deploy",), "s3://logs/x", max_tries=4)
    code = wire.CodeRef("bundle", "ab" * 16, "ml.py")
    return wire.encode_request(request, run_pk=7, code=code, reply_to="", flows_root="/srv/flows")


def test_a_try_pod_carries_the_tasks_executor_config() -> None:
    config = {
        "namespace": "ml",
        "image": "registry.example.com/etl:2024-06",
        "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"nvidia.com/gpu": "1"}},
        "node_selector": {"pool": "gpu"},
        "labels": {"team": "ml"},
        "env": {"MODEL": "big"},
        "pod_template": {
            "metadata": {"annotations": {"cost-center": "42"}},
            "spec": {
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [
                    {"name": "try", "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
                    {"name": "proxy", "image": "cloud-sql-proxy:2"},
                ],
                "volumes": [{"name": "scratch", "emptyDir": {}}],
            },
        },
    }
    payload = _payload(config)
    pod = pod_for_try(payload, image="default:1", namespace="ductwork", scheduler="sched-host-1234")
    assert isinstance(pod, client.V1Pod)
    manifest = to_manifest(pod)
    # The round trip through the client's models keeps everything: it is a valid V1Pod.
    again = client.ApiClient()._ApiClient__deserialize(json.loads(json.dumps(manifest)), "V1Pod")
    assert to_manifest(again) == manifest
    meta, spec = manifest["metadata"], manifest["spec"]
    assert meta["namespace"] == "ml"
    assert DNS_1123.match(meta["name"]) and len(meta["name"]) <= 63
    assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in meta["labels"].values())
    assert meta["labels"]["team"] == "ml" and meta["labels"]["ductwork/try"] == "3"
    assert meta["annotations"]["cost-center"] == "42"
    assert meta["annotations"]["ductwork/task-id"] == "Train_Model.v2"
    assert spec["restartPolicy"] == "Never"
    assert spec["nodeSelector"] == {"pool": "gpu"}
    assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert [c["name"] for c in spec["containers"]] == ["try", "proxy"]
    main = spec["containers"][0]
    assert main["image"] == "registry.example.com/etl:2024-06"
    assert main["command"] == ["ductwork", "worker", "--run-try"]
    assert main["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"nvidia.com/gpu": "1"}}
    assert main["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch"}]
    assert main["envFrom"] == [{"secretRef": {"name": "ductwork"}}]
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["MODEL"] == "big"
    decoded = wire.decode_request(json.loads(env["DUCTWORK_TRY_REQUEST"]))
    assert decoded.request.key == TryKey("ml_pipeline/scheduled__2024-06-01T00:00:00+00:00", "Train_Model.v2", 3)
    assert decoded.request.run.params == {"day": dt.datetime(2024, 6, 1, tzinfo=dt.UTC)}
    assert decoded.request.node.queue == "gpu" and decoded.code is not None and decoded.code.path == "ml.py"


def test_defaults_come_from_the_settings() -> None:
    pod = to_manifest(pod_for_try(_payload({}), image="ductwork:7", namespace="etl", scheduler="s"))
    assert pod["metadata"]["namespace"] == "etl"
    assert pod["spec"]["containers"][0]["image"] == "ductwork:7"
    assert "nodeSelector" not in pod["spec"]


def test_bad_executor_config_is_refused_with_the_task_and_the_key() -> None:
    with pytest.raises(
        DefinitionError, match=r"task 'Train_Model.v2': executor_config has no key 'node_selecter'.*node_selector"
    ):
        pod_for_try(_payload({"node_selecter": {"a": "b"}}), image="x", namespace="n", scheduler="s")
    with pytest.raises(DefinitionError, match=r"unknown field 'spec.tolerashuns'"):
        pod_for_try(_payload({"pod_template": {"spec": {"tolerashuns": []}}}), image="x", namespace="n", scheduler="s")
    with pytest.raises(DefinitionError, match="no image for its pod: set kubernetes_image"):
        pod_for_try(_payload({}), image="", namespace="n", scheduler="s")


_KINDS = {
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
}


def test_the_manifests_are_valid_kubernetes_objects() -> None:
    api = client.ApiClient()
    seen = set()
    for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["apiVersion"].startswith("keda.sh/"):
                continue  # a custom resource: not in the client's models
            kind = _KINDS[(doc["apiVersion"], doc["kind"])]
            model = api._ApiClient__deserialize(json.loads(json.dumps(doc)), kind)
            assert api.sanitize_for_serialization(model) == doc, f"{path.name}: fields the API does not know"
            seen.add((doc["kind"], doc["metadata"]["name"]))
    assert {
        ("Deployment", "ductwork-scheduler"),
        ("Deployment", "ductwork-webserver"),
        ("Deployment", "ductwork-worker"),
    } <= seen


def test_numbers_are_taken_as_kubernetes_yaml_takes_them() -> None:
    """``{"cpu": 2}`` and ``{"gpu": 1}`` as a manifest has them: the client's models refused the
    numbers, and every try of the task failed with "no pod can be made from its executor_config"."""
    config = {
        "resources": {"requests": {"cpu": 2, "memory": "1Gi"}, "limits": {"cpu": 2.5}},
        "node_selector": {"gpu": 1},
    }
    pod = to_manifest(pod_for_try(_payload(config), image="i", namespace="n", scheduler="s"))
    container = pod["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "2.5"}}
    assert pod["spec"]["nodeSelector"] == {"gpu": "1"}


def test_a_label_value_kubernetes_refuses_is_refused_naming_the_task_and_the_label() -> None:
    with pytest.raises(DefinitionError, match=r"task 'Train_Model.v2': executor_config\['labels'\]\['team'\]"):
        pod_for_try(_payload({"labels": {"team": "data eng"}}), image="i", namespace="n", scheduler="s")
