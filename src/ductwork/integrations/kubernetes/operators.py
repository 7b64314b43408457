"""Run a pod on Kubernetes (``pip install 'ductwork[kubernetes]'``)."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator
from ductwork.core.sensors import context_clock
from ductwork.errors import DefinitionError, TaskExecutionError
from ductwork.integrations._deps import require

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
ON_FINISH = ("delete_pod", "delete_succeeded_pod", "keep_pod")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
_NAME_UNSAFE = re.compile(r"[^a-z0-9\-]+")


def label_value(text: str) -> str:
    """A valid label value: at most 63 characters of ``[A-Za-z0-9_.-]``, alphanumeric at both ends."""
    cleaned = _LABEL_UNSAFE.sub("_", text)[:63].strip("_.-")
    return cleaned


def pod_name(base: str, suffix: str) -> str:
    """A DNS-1123 pod name from a task id: lower case, dashes, at most 63 characters with the suffix."""
    cleaned = _NAME_UNSAFE.sub("-", base.lower()).strip("-") or "task"
    return f"{cleaned[: 62 - len(suffix)].rstrip('-')}-{suffix}"


class KubernetesPodOperator(BaseOperator):
    """Runs a pod to completion; its log goes to the task log and its last line downstream.

    Args:
        image: the container image (templated).
        cmds / arguments: the container's command and arguments (templated).
        env_vars: environment variables (templated).
        namespace, labels, annotations, service_account_name, node_selector, tolerations,
        affinity, image_pull_secrets (names), security_context: as in a pod spec.
        container_resources: ``{"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {...}}``.
        image_pull_policy: ``"IfNotPresent"`` (default), ``"Always"`` or ``"Never"``.
        volumes / volume_mounts: pod-spec dictionaries (``{"name": "data", "emptyDir": {}}``,
            ``{"name": "data", "mountPath": "/data"}``).
        active_deadline_seconds: Kubernetes kills the pod after that long.
        startup_timeout: seconds the pod may stay Pending before the task fails.
        timeout: seconds for the whole pod run.
        on_finish_action: ``"delete_pod"`` (default), ``"delete_succeeded_pod"`` or ``"keep_pod"``.
        in_cluster: use the service account of the pod Ductwork runs in; otherwise a kubeconfig
            (``config_file``, ``cluster_context``).
    """

    template_fields = ("image", "cmds", "arguments", "env_vars", "labels", "annotations")
    ui_color = "#bfd7f5"

    def __init__(
        self,
        *,
        image: str,
        cmds: Sequence[str] | None = None,
        arguments: Sequence[str] | None = None,
        env_vars: Mapping[str, str] | None = None,
        namespace: str = "default",
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        service_account_name: str | None = None,
        container_resources: Mapping[str, Mapping[str, str]] | None = None,
        image_pull_policy: str = "IfNotPresent",
        image_pull_secrets: Sequence[str] = (),
        volumes: Sequence[Mapping[str, Any]] = (),
        volume_mounts: Sequence[Mapping[str, Any]] = (),
        node_selector: Mapping[str, str] | None = None,
        tolerations: Sequence[Mapping[str, Any]] = (),
        affinity: Mapping[str, Any] | None = None,
        security_context: Mapping[str, Any] | None = None,
        active_deadline_seconds: int | None = None,
        startup_timeout: float = 120.0,
        timeout: float | None = None,
        poll_interval: float = 2.0,
        on_finish_action: str = "delete_pod",
        in_cluster: bool = False,
        config_file: str | None = None,
        cluster_context: str | None = None,
        push_output: str = "last_line",
        **kwargs: Any,
    ) -> None:
        owner = f"KubernetesPodOperator(task_id={kwargs.get('task_id')!r})"
        if not isinstance(image, str) or not image:
            raise DefinitionError(f"{owner}: image must be a non-empty string")
        if image_pull_policy not in PULL_POLICIES:
            raise DefinitionError(f"{owner}: image_pull_policy must be one of {', '.join(PULL_POLICIES)}")
        if on_finish_action not in ON_FINISH:
            raise DefinitionError(f"{owner}: on_finish_action must be one of {', '.join(ON_FINISH)}")
        if push_output not in ("last_line", "all", "none"):
            raise DefinitionError(f"{owner}: push_output must be 'last_line', 'all' or 'none'")
        unknown = set(container_resources or {}) - {"requests", "limits"}
        if unknown:
            raise DefinitionError(f"{owner}: container_resources takes 'requests' and 'limits', not {sorted(unknown)}")
        super().__init__(**kwargs)
        self.image = image
        self.cmds = list(cmds) if cmds is not None else None
        self.arguments = list(arguments) if arguments is not None else None
        self.env_vars = dict(env_vars or {})
        self.namespace = namespace
        self.name = name
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.service_account_name = service_account_name
        self.container_resources = {k: dict(v) for k, v in (container_resources or {}).items()}
        self.image_pull_policy = image_pull_policy
        self.image_pull_secrets = list(image_pull_secrets)
        self.volumes = [dict(v) for v in volumes]
        self.volume_mounts = [dict(v) for v in volume_mounts]
        self.node_selector = dict(node_selector or {})
        self.tolerations = [dict(t) for t in tolerations]
        self.affinity = dict(affinity) if affinity else None
        self.security_context = dict(security_context) if security_context else None
        self.active_deadline_seconds = active_deadline_seconds
        self.startup_timeout = startup_timeout
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.on_finish_action = on_finish_action
        self.in_cluster = in_cluster
        self.config_file = config_file
        self.cluster_context = cluster_context
        self.push_output = push_output
        self._pod: tuple[Any, str, str] | None = None
        self._lock = threading.Lock()

    # --- the specification (pure) -------------------------------------------------------------
    def build_pod_manifest(self, context: Mapping[str, Any] | None = None, *, suffix: str = "") -> dict[str, Any]:
        """The pod as a plain ``v1 Pod`` manifest; no I/O. With a context the pod is labelled with
        the flow, run, task and try; ``suffix`` makes the name unique (``execute`` draws one)."""
        labels = dict(self.labels)
        if context is not None:
            labels.update(
                {
                    "ductwork.io/flow-id": label_value(str(context.get("flow_id", ""))),
                    "ductwork.io/run-id": label_value(str(context.get("run_id", ""))),
                    "ductwork.io/task-id": label_value(self.task_id),
                    "ductwork.io/try-number": str(context.get("try_number", "")),
                }
            )
        container: dict[str, Any] = {"name": "base", "image": self.image, "imagePullPolicy": self.image_pull_policy}
        if self.cmds is not None:
            container["command"] = self.cmds
        if self.arguments is not None:
            container["args"] = self.arguments
        if self.env_vars:
            container["env"] = [{"name": k, "value": str(v)} for k, v in self.env_vars.items()]
        if self.container_resources:
            container["resources"] = self.container_resources
        if self.volume_mounts:
            container["volumeMounts"] = self.volume_mounts
        spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Never"}
        optional = {
            "serviceAccountName": self.service_account_name,
            "volumes": self.volumes or None,
            "nodeSelector": self.node_selector or None,
            "tolerations": self.tolerations or None,
            "affinity": self.affinity,
            "securityContext": self.security_context,
            "activeDeadlineSeconds": self.active_deadline_seconds,
            "imagePullSecrets": [{"name": s} for s in self.image_pull_secrets] or None,
        }
        spec.update({k: v for k, v in optional.items() if v is not None})
        name = pod_name(self.name or self.task_id, suffix) if suffix else (self.name or pod_name(self.task_id, "pod"))
        metadata: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": labels}
        if self.annotations:
            metadata["annotations"] = self.annotations
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}

    # --- running ------------------------------------------------------------------------------
    def _api(self) -> Any:
        what = f"task {self.task_id!r} (KubernetesPodOperator)"
        k8s = require("kubernetes", extra="kubernetes", what=what)
        try:
            if self.in_cluster:
                k8s.config.load_incluster_config()
                return k8s.client.CoreV1Api()
            configuration = k8s.client.Configuration()
            k8s.config.load_kube_config(
                config_file=self.config_file, context=self.cluster_context, client_configuration=configuration
            )
        except Exception as exc:  # ConfigException, a missing or broken kubeconfig
            raise TaskExecutionError(
                f"task {self.task_id!r}: no usable Kubernetes configuration "
                f"({'in-cluster' if self.in_cluster else self.config_file or '~/.kube/config'}): {exc}"
            ) from exc
        configuration.retries = 0  # an unreachable cluster fails at once instead of after urllib3's retries
        return k8s.client.CoreV1Api(k8s.client.ApiClient(configuration))

    def _call(self, action: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, _request_timeout=30, **kwargs)
        except Exception as exc:
            host = getattr(getattr(getattr(func, "__self__", None), "api_client", None), "configuration", None)
            where = getattr(host, "host", "the cluster")
            status = getattr(exc, "status", None)
            reason = f"HTTP {status}: {getattr(exc, 'reason', '')}" if status else f"{type(exc).__name__}: {exc}"
            raise TaskExecutionError(f"task {self.task_id!r}: could not {action} on {where}: {reason}") from exc

    def execute(self, context: TaskContext) -> Any:
        log = context["log"]
        clock = context_clock(context)
        api = self._api()
        manifest = self.build_pod_manifest(context, suffix=uuid.uuid4().hex[:8])
        name, namespace = manifest["metadata"]["name"], self.namespace
        self._call(f"create pod {name!r} in namespace {namespace!r}", api.create_namespaced_pod, namespace, manifest)
        with self._lock:
            self._pod = (api, name, namespace)
        log.info("created pod %s/%s", namespace, name)
        phase = "Pending"
        started = clock.now()
        try:
            while True:
                pod = self._call(f"read pod {name!r}", api.read_namespaced_pod, name, namespace)
                phase = pod.status.phase or "Pending"
                waited = (clock.now() - started).total_seconds()
                if phase in ("Succeeded", "Failed"):
                    break
                if phase == "Pending" and waited > self.startup_timeout:
                    raise TaskExecutionError(
                        f"task {self.task_id!r}: pod {name} stayed Pending for more than {self.startup_timeout:g}s"
                    )
                if self.timeout is not None and waited > self.timeout:
                    raise TaskExecutionError(f"task {self.task_id!r}: pod {name} ran longer than {self.timeout:g}s")
                clock.sleep(self.poll_interval)
            text = self._call(f"read the log of pod {name!r}", api.read_namespaced_pod_log, name, namespace)
            lines = str(text or "").splitlines()
            for line in lines:
                print(line, flush=True)
            if phase == "Failed":
                raise TaskExecutionError(f"task {self.task_id!r}: pod {namespace}/{name} failed")
        finally:
            with self._lock:
                self._pod = None
            self._finish(api, name, namespace, phase, log)
        if self.push_output == "none":
            return None
        return "\n".join(lines) if self.push_output == "all" else (lines[-1] if lines else None)

    def _finish(self, api: Any, name: str, namespace: str, phase: str, log: Any) -> None:
        delete = self.on_finish_action == "delete_pod" or (
            self.on_finish_action == "delete_succeeded_pod" and phase == "Succeeded"
        )
        if delete:
            try:
                api.delete_namespaced_pod(name, namespace, _request_timeout=30)
            except Exception as exc:
                log.warning("could not delete pod %s/%s: %s", namespace, name, exc)

    def on_kill(self) -> None:
        with self._lock:
            pod = self._pod
        if pod is not None:
            api, name, namespace = pod
            try:
                api.delete_namespaced_pod(name, namespace, _request_timeout=30)
            except Exception:
                pass

    def extra_spec(self) -> dict[str, Any]:
        return {"image": self.image, "namespace": self.namespace, "cmds": self.cmds}
