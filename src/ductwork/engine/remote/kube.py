"""Kubernetes: a pod per try (ADR 0012).

``pod_for_try`` builds the pod of one try from the task's ``executor_config``:

- ``pod_template``: a pod manifest (plain data, as in a YAML file) the pod starts from; a
  container named ``try`` in it is merged with Ductwork's, others (sidecars) are kept;
- ``namespace``, ``image``, ``resources`` (``{"requests": {...}, "limits": {...}}``),
  ``node_selector``, ``labels``, ``annotations``, ``env`` (name -> value),
  ``service_account_name``.

The pod runs ``ductwork worker --run-try``, which reads the try request from
``DUCTWORK_TRY_REQUEST`` and records the try like a Celery worker does (ADR 0010); the
database URL and other secrets come from the Secret named by ``kubernetes_secret`` (envFrom).
The builder returns the ``kubernetes`` client's ``V1Pod`` model, so what reaches the API server
has been checked against the API's own types.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from ductwork.errors import DefinitionError

KNOWN_KEYS = frozenset(
    {
        "pod_template",
        "namespace",
        "image",
        "resources",
        "node_selector",
        "labels",
        "annotations",
        "env",
        "service_account_name",
    }
)
SECRET = "ductwork"
"""The Secret every try pod takes DUCTWORK_* settings from (``deploy/kubernetes/secret.yaml``)."""
_LABEL = re.compile(r"[^A-Za-z0-9_.-]")
_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?")


def check_executor_config(task_id: str, config: Mapping[str, Any]) -> None:
    unknown = sorted(set(config) - KNOWN_KEYS)
    if unknown:
        from ductwork.errors import did_you_mean

        raise DefinitionError(
            f"task {task_id!r}: executor_config has no key {unknown[0]!r}.{did_you_mean(unknown[0], KNOWN_KEYS)} "
            f"Known keys: {', '.join(sorted(KNOWN_KEYS))}"
        )
    for key in ("resources", "node_selector", "labels", "annotations", "env", "pod_template"):
        if key in config and not isinstance(config[key], Mapping):
            raise DefinitionError(f"task {task_id!r}: executor_config[{key!r}] must be a mapping")
    for name, value in (config.get("labels") or {}).items():
        # Refused by the API server when the pod is made, failing every try of the task.
        if not _LABEL_VALUE.fullmatch(str(value)):
            raise DefinitionError(
                f"task {task_id!r}: executor_config['labels'][{name!r}] = {value!r} is not a Kubernetes label "
                "value (at most 63 characters of letters, digits, '-', '_' and '.', a letter or digit at both ends)"
            )


def label_value(text: str) -> str:
    """A valid label value (63 characters of [A-Za-z0-9_.-], alphanumeric at both ends)."""
    value = _LABEL.sub("_", text)[:63].strip("_.-")
    return value or "x"


def pod_name(run_key: str, task_id: str, try_number: int) -> str:
    digest = hashlib.sha1(f"{run_key}\0{task_id}\0{try_number}".encode()).hexdigest()[:10]
    stem = re.sub(r"[^a-z0-9-]", "-", task_id.lower()).strip("-")[:40] or "task"
    return f"dw-{stem}-{try_number}-{digest}"


def pod_for_try(
    payload: Mapping[str, Any],
    *,
    image: str,
    namespace: str,
    scheduler: str,
    environment: Mapping[str, str] | None = None,
    secret: str = SECRET,
) -> Any:
    """The ``V1Pod`` that runs the try described by ``payload`` (a ``wire.encode_request``)."""
    from kubernetes import client

    node = payload["node"]
    run_key, task_id, try_number = payload["key"]
    config = dict(node.get("executor_config") or {})
    check_executor_config(task_id, config)
    api = client.ApiClient()
    template = json.loads(json.dumps(config.get("pod_template") or {}))
    spec = template.setdefault("spec", {})
    if not isinstance(spec, dict):
        raise DefinitionError(f"task {task_id!r}: executor_config['pod_template']['spec'] must be a mapping")
    spec.setdefault("containers", [])
    pod: Any = _deserialize(api, {"apiVersion": "v1", "kind": "Pod", **template}, "V1Pod")
    pod.metadata = pod.metadata or client.V1ObjectMeta()
    pod.spec = pod.spec or client.V1PodSpec(containers=[])
    flow_id = run_key.split("/", 1)[0]
    pod.metadata.name = pod_name(run_key, task_id, int(try_number))
    pod.metadata.namespace = config.get("namespace") or pod.metadata.namespace or namespace
    pod.metadata.labels = {
        **(pod.metadata.labels or {}),
        **{str(k): str(v) for k, v in (config.get("labels") or {}).items()},
        "app.kubernetes.io/name": "ductwork-try",
        "ductwork/scheduler": label_value(scheduler),
        "ductwork/flow": label_value(flow_id),
        "ductwork/task": label_value(task_id),
        "ductwork/try": str(int(try_number)),
    }
    pod.metadata.annotations = {
        **(pod.metadata.annotations or {}),
        **{str(k): str(v) for k, v in (config.get("annotations") or {}).items()},
        "ductwork/run": run_key,
        "ductwork/task-id": task_id,
    }
    pod.spec.restart_policy = "Never"
    if config.get("node_selector"):
        selector = {str(k): _text(v) for k, v in config["node_selector"].items()}  # {"gpu": 1}: "1"
        pod.spec.node_selector = {**(pod.spec.node_selector or {}), **selector}
    if config.get("service_account_name"):
        pod.spec.service_account_name = config["service_account_name"]
    containers = list(pod.spec.containers or [])
    main = next((c for c in containers if c.name == "try"), None)
    if main is None:
        main = client.V1Container(name="try")
        containers.insert(0, main)
    main.image = config.get("image") or main.image or image
    if not main.image:
        raise DefinitionError(
            f"task {task_id!r}: no image for its pod: set kubernetes_image, or executor_config['image']"
        )
    main.command = ["ductwork", "worker", "--run-try"]
    main.args = None
    env = {**(environment or {}), **{str(k): str(v) for k, v in (config.get("env") or {}).items()}}
    env["DUCTWORK_TRY_REQUEST"] = json.dumps(payload, separators=(",", ":"))
    main.env = [e for e in (main.env or []) if e.name not in env] + [
        client.V1EnvVar(name=k, value=v) for k, v in sorted(env.items())
    ]
    main.env_from = [*(main.env_from or []), client.V1EnvFromSource(secret_ref=client.V1SecretEnvSource(name=secret))]
    if config.get("resources"):
        amounts = {
            part: {str(k): _text(v) for k, v in values.items()} if isinstance(values, Mapping) else values
            for part, values in config["resources"].items()
        }  # {"cpu": 2}, as Kubernetes takes it: the client's model wants "2"
        main.resources = _deserialize(api, amounts, "V1ResourceRequirements")
    pod.spec.containers = containers
    return pod


def _text(value: Any) -> Any:
    """A number as Kubernetes' YAML takes it (``cpu: 2``, ``gpu: 1``), as the text the client's
    models want; anything else as given."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _deserialize(api: Any, data: Mapping[str, Any], kind: str) -> Any:
    """Plain data into a ``kubernetes.client`` model (unknown fields are dropped by the client,
    so a typo in a template is caught by comparing the round trip)."""
    model = api._ApiClient__deserialize(json.loads(json.dumps(data)), kind)
    back = api.sanitize_for_serialization(model)
    lost = _missing(data, back)
    if lost:
        raise DefinitionError(f"{kind}: unknown field {lost!r} (not in the Kubernetes API)")
    return model


def _missing(given: Any, kept: Any, path: str = "") -> str | None:
    if isinstance(given, Mapping):
        if not isinstance(kept, Mapping):
            return path or "(root)"
        for key, value in given.items():
            if key not in kept:
                return f"{path}.{key}" if path else str(key)
            lost = _missing(value, kept[key], f"{path}.{key}" if path else str(key))
            if lost:
                return lost
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (a, b) in enumerate(zip(given, kept, strict=False)):
            lost = _missing(a, b, f"{path}[{i}]")
            if lost:
                return lost
    return None


def to_manifest(pod: Any) -> dict[str, Any]:
    from kubernetes import client

    data: dict[str, Any] = client.ApiClient().sanitize_for_serialization(pod)
    return data
