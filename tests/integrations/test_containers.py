"""Docker and Kubernetes operators: the specifications they build, and clear failures when no
engine or cluster is reachable (none runs on this machine)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ductwork import Flow
from ductwork.errors import DefinitionError
from ductwork.integrations.docker import DockerOperator
from ductwork.integrations.kubernetes import KubernetesPodOperator, label_value, pod_name
from ductwork.testing import run_flow


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_docker_container_spec() -> None:
    op = DockerOperator(
        task_id="transform",
        image="python:3.12-slim",
        command=["python", "-c", "print('hi')"],
        entrypoint="/bin/sh",
        environment={"STAGE": "prod"},
        private_environment={"API_KEY": "k"},
        volumes=["/srv/data:/data:ro", "cache:/cache"],
        working_dir="/work",
        user="1000:1000",
        network_mode="bridge",
        labels={"team": "data"},
        extra_hosts={"db": "10.0.0.5"},
        cpus=1.5,
        mem_limit="512m",
        shm_size="64m",
    )
    spec = op.build_container_spec({"flow_id": "etl", "run_id": "manual__1", "try_number": 2})
    assert spec == {
        "image": "python:3.12-slim",
        "command": ["python", "-c", "print('hi')"],
        "entrypoint": "/bin/sh",
        "environment": {"STAGE": "prod", "API_KEY": "k"},
        "volumes": {"/srv/data": {"bind": "/data", "mode": "ro"}, "cache": {"bind": "/cache", "mode": "rw"}},
        "working_dir": "/work",
        "user": "1000:1000",
        "network_mode": "bridge",
        "labels": {
            "team": "data",
            "io.ductwork.flow_id": "etl",
            "io.ductwork.run_id": "manual__1",
            "io.ductwork.task_id": "transform",
            "io.ductwork.try_number": "2",
        },
        "extra_hosts": {"db": "10.0.0.5"},
        "privileged": False,
        "nano_cpus": 1_500_000_000,
        "mem_limit": "512m",
        "shm_size": "64m",
        "detach": True,
        "tty": False,
        "auto_remove": False,
    }
    minimal = DockerOperator(task_id="m", image="alpine").build_container_spec()
    assert minimal == {
        "image": "alpine", "environment": {}, "labels": {}, "privileged": False,
        "detach": True, "tty": False, "auto_remove": False,
    }  # fmt: skip
    assert op.extra_spec() == {"image": "python:3.12-slim", "command": ["python", "-c", "print('hi')"]}


def test_docker_templates_render_but_private_environment_stays_out() -> None:
    with Flow("docker_t", start_date="2024-01-01") as f:
        DockerOperator(
            task_id="t",
            image="repo/etl:{{ ds_nodash }}",
            command="run --date {{ ds }}",
            environment={"DAY": "{{ ds }}"},
            private_environment={"TOKEN": "secret"},
            docker_url=f"tcp://127.0.0.1:{_closed_port()}",
            api_timeout=5,
        )
    result = run_flow(f, logical_date="2024-01-31")
    rendered = result["t"].tries[-1].rendered
    assert rendered["image"] == "repo/etl:20240131"
    assert rendered["command"] == "run --date 2024-01-31"
    assert rendered["environment"] == {"DAY": "2024-01-31"}
    assert "secret" not in str(rendered)


def test_docker_execute_fails_clearly_without_an_engine(tmp_path: Path) -> None:
    pytest.importorskip("docker")
    with Flow("docker_down") as f:
        DockerOperator(task_id="tcp", image="alpine", docker_url=f"tcp://127.0.0.1:{_closed_port()}", api_timeout=5)
        DockerOperator(task_id="sock", image="alpine", docker_url=f"unix://{tmp_path}/no-docker.sock", api_timeout=5)
    result = run_flow(f)
    for task_id, where in (("tcp", "tcp://127.0.0.1:"), ("sock", f"unix://{tmp_path}/no-docker.sock")):
        error = result[task_id].tries[-1].error or ""
        assert result[task_id].state == "failed"
        assert f"task '{task_id}': cannot reach the Docker engine at {where}" in error
        assert "Is Docker running" in error


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pull_policy": "sometimes"}, "pull_policy must be one of always, if_not_present, never"),
        ({"auto_remove": "yes"}, "auto_remove must be one of"),
        ({"volumes": ["no-colon"]}, "volume 'no-colon' is not 'source:/container/path"),
        ({"cpus": 0}, "cpus must be positive"),
    ],
)
def test_docker_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        DockerOperator(task_id="d", image="alpine", **kwargs)  # type: ignore[arg-type]


def test_kubernetes_pod_manifest() -> None:
    op = KubernetesPodOperator(
        task_id="group.Train_Model",
        image="ghcr.io/acme/train:1.2",
        cmds=["python", "train.py"],
        arguments=["--epochs", "3"],
        env_vars={"MODE": "full", "SEED": 7},  # type: ignore[dict-item]
        namespace="ml",
        labels={"team": "ml"},
        annotations={"note": "nightly"},
        service_account_name="trainer",
        container_resources={"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        image_pull_policy="Always",
        image_pull_secrets=["ghcr"],
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "datasets"}}],
        volume_mounts=[{"name": "data", "mountPath": "/data", "readOnly": True}],
        node_selector={"gpu": "true"},
        tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        security_context={"runAsNonRoot": True},
        active_deadline_seconds=3600,
    )
    manifest = op.build_pod_manifest({"flow_id": "ml pipeline", "run_id": "scheduled__2024-01-31T00:00:00+00:00",
                                      "try_number": 1}, suffix="ab12cd34")  # fmt: skip
    assert manifest == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "group-train-model-ab12cd34",
            "namespace": "ml",
            "labels": {
                "team": "ml",
                "ductwork.io/flow-id": "ml_pipeline",
                "ductwork.io/run-id": "scheduled__2024-01-31T00_00_00_00_00",
                "ductwork.io/task-id": "group.Train_Model",
                "ductwork.io/try-number": "1",
            },
            "annotations": {"note": "nightly"},
        },
        "spec": {
            "containers": [
                {
                    "name": "base",
                    "image": "ghcr.io/acme/train:1.2",
                    "imagePullPolicy": "Always",
                    "command": ["python", "train.py"],
                    "args": ["--epochs", "3"],
                    "env": [{"name": "MODE", "value": "full"}, {"name": "SEED", "value": "7"}],
                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                }
            ],
            "restartPolicy": "Never",
            "serviceAccountName": "trainer",
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "datasets"}}],
            "nodeSelector": {"gpu": "true"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "securityContext": {"runAsNonRoot": True},
            "activeDeadlineSeconds": 3600,
            "imagePullSecrets": [{"name": "ghcr"}],
        },
    }
    assert pod_name("x" * 80, "12345678") == "x" * 54 + "-12345678"  # 63 characters: the DNS label limit
    assert label_value("a/b c" + "z" * 80).startswith("a_b_c") and len(label_value("z" * 80)) == 63


def test_kubernetes_manifest_is_accepted_by_the_client_model() -> None:
    k8s = pytest.importorskip("kubernetes")
    manifest = KubernetesPodOperator(task_id="t", image="busybox", cmds=["true"]).build_pod_manifest(suffix="x1")
    api = k8s.client.ApiClient()
    pod = api._ApiClient__deserialize(manifest, "V1Pod")  # the client's own model validation
    assert pod.spec.containers[0].image == "busybox" and pod.spec.restart_policy == "Never"


def test_kubernetes_execute_fails_clearly_without_a_cluster(tmp_path: Path) -> None:
    pytest.importorskip("kubernetes")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:{_closed_port()}
    insecure-skip-tls-verify: true
users:
- name: me
  user:
    token: abc
contexts:
- name: local
  context: {{cluster: local, user: me}}
current-context: local
"""
    )
    with Flow("k8s_down") as f:
        KubernetesPodOperator(task_id="down", image="busybox", config_file=str(kubeconfig))
        KubernetesPodOperator(task_id="noconfig", image="busybox", config_file=str(tmp_path / "missing"))
    result = run_flow(f)
    down = result["down"].tries[-1].error or ""
    assert "task 'down': could not create pod 'down-" in down and "in namespace 'default' on https://127.0.0.1:" in down
    noconfig = result["noconfig"].tries[-1].error or ""
    assert f"task 'noconfig': no usable Kubernetes configuration ({tmp_path / 'missing'})" in noconfig


def test_kubernetes_bad_arguments() -> None:
    with pytest.raises(DefinitionError, match="image_pull_policy must be one of Always, IfNotPresent, Never"):
        KubernetesPodOperator(task_id="k", image="x", image_pull_policy="always")
    with pytest.raises(DefinitionError, match="container_resources takes 'requests' and 'limits'"):
        KubernetesPodOperator(task_id="k", image="x", container_resources={"request": {"cpu": "1"}})
