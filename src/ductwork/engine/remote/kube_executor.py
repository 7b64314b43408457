"""``executor = "kubernetes"``: every try in a pod of its own (ADR 0012).

It is the Celery executor's bookkeeping (tries recorded by whoever runs them, ends read from the
database, lost tries declared by compare-and-set) with pods instead of messages: ``_send``
creates the try's pod, and the pods this scheduler started are looked at every reconcile: a pod
that failed, or vanished, while its try is still queued or running in the database makes the try
fail (or retry, by its policy) with the pod's reason.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from ductwork.core.clock import SystemClock
from ductwork.core.states import TaskState
from ductwork.engine.executor import try_name
from ductwork.engine.executors._worker import failed_outcome
from ductwork.engine.journal import encode_outcome
from ductwork.engine.remote.executor import CeleryExecutor, _Flight
from ductwork.engine.remote.kube import pod_for_try
from ductwork.errors import DuctworkError
from ductwork.store.engine import transaction
from ductwork.store.repo import remote as remote_repo

log = logging.getLogger("ductwork.scheduler")
POD_SELECTOR = "ductwork/try"
"""Every try pod, whichever scheduler made it: a scheduler that adopts the tries of one that
died finds their pods (they carry the dead one's ``ductwork/scheduler`` label)."""
_PASSED = ("DUCTWORK_REMOTE_LOG_URL", "DUCTWORK_RESULTS_OFFLOAD_URL", "DUCTWORK_BUNDLE_URL", "DUCTWORK_FLOWS_GIT_URL")


class KubernetesExecutor(CeleryExecutor):
    batch_limit = 1  # one pod per try

    def __init__(self, *args: Any, api: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api = api
        self.scheduler_id = f"{socket.gethostname()}-{os.getpid()}"
        self._pods: dict[str, _Flight] = {}

    def start(self) -> None:
        if self.app is not None:
            return
        if self.api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                try:
                    config.load_kube_config()
                except Exception as exc:  # also a kubeconfig that is not YAML (yaml's own errors)
                    raise DuctworkError(
                        "executor = kubernetes: no Kubernetes API to talk to: this scheduler is not in a pod "
                        f"with a service account, and no kubeconfig could be read ({exc}); run it in the "
                        "cluster (deploy/kubernetes/) or point KUBECONFIG at a configuration"
                    ) from None
            self.api = client.CoreV1Api()
            # The client's own retries warn on every attempt: while the API is away that is
            # hundreds of lines a minute; this executor says once that it is unreachable.
            logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        self.app = self.api
        self._reconcile(force=True)

    def free_slots(self) -> int:
        return max(0, self.settings.parallelism - len(self._flights))

    def _capacity_of(self, queue: str) -> int:
        """Every queue has the scheduler's ``parallelism`` pods: a pod is made for each try."""
        return self.settings.parallelism

    def _send(self, flight: _Flight) -> bool:
        if flight.payload is None:
            return True
        environment = {k: v for k, v in os.environ.items() if k in _PASSED}
        try:
            pod = pod_for_try(
                flight.payload,
                image=self.settings.kubernetes_image,
                namespace=self.settings.kubernetes_namespace,
                scheduler=self.scheduler_id,
                environment=environment,
            )
        except Exception as exc:
            # One task's executor_config (a misspelt key, a value of the wrong type) makes no pod:
            # that try fails saying why; raised on, it stopped the scheduler at every start.
            task_id = flight.key.task_id
            why = str(exc).strip().splitlines()
            detail = f"{type(exc).__name__}: {' '.join(why)[:500]}" if why else type(exc).__name__
            if f"task {task_id!r}" not in detail:
                detail = f"task {task_id!r}: {detail}"
            self._pod_lost(flight, f"no pod can be made from its executor_config ({detail})")
            return True
        try:
            self.api.create_namespaced_pod(pod.metadata.namespace, pod)
            self._api_answers()
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status == 409:  # already there (sent again after a restart): the pod runs it once
                pass
            elif status in (400, 403, 404, 422):  # the API refuses this pod: say why, do not retry
                body = str(getattr(exc, "body", "") or exc).strip().splitlines()[0][:500]
                self._pod_lost(flight, f"the Kubernetes API refused its pod ({status}): {body}")
                return True
            else:
                self._broker_failed(exc)
                return False
        flight.published_at = time.monotonic()
        self._pods[f"{pod.metadata.namespace}/{pod.metadata.name}"] = flight
        return True

    def _connect(self) -> None:
        """While the API is unreachable, ask it again (at most once a second)."""
        if self._broker_down_since is None or time.monotonic() < self._next_connect:
            return
        try:
            self.api.list_namespaced_pod(self.settings.kubernetes_namespace, label_selector=POD_SELECTOR, limit=1)
        except Exception:
            self._next_connect = time.monotonic() + 1.0
            return
        self._api_answers()

    def _broker_failed(self, exc: BaseException) -> None:
        """The Kubernetes API, not a broker, is what failed."""
        if self._broker_down_since is None:
            self._broker_down_since = time.monotonic()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.error(
                "the Kubernetes API is unreachable (%s): no pod is made or looked at meanwhile; tries wait",
                first[:300],
            )
        self._next_connect = time.monotonic() + 1.0

    def _api_answers(self) -> None:
        if self._broker_down_since is not None:
            log.info("the Kubernetes API answers again after %.1fs", time.monotonic() - self._broker_down_since)
            self._broker_down_since = None

    def _drain(self, timeout: float) -> None:
        time.sleep(min(timeout, 0.25))

    def _look_at_workers(self) -> None:
        """Pods instead of workers: a pod that ended without its try's end recorded fails it."""
        if not self._pods:
            return
        by_name = {}
        namespaces = {key.split("/", 1)[0] for key in self._pods}
        try:
            for namespace in namespaces:
                found = self.api.list_namespaced_pod(namespace, label_selector=POD_SELECTOR)
                for pod in found.items:
                    by_name[f"{namespace}/{pod.metadata.name}"] = pod
        except Exception as exc:  # an API outage: no pod is declared gone for it; the scheduler goes on
            self._broker_failed(exc)
            return
        self._api_answers()
        for key, flight in list(self._pods.items()):
            if flight.key not in self._flights:
                del self._pods[key]
                self._delete(key)
                continue
            pod = by_name.get(key)
            phase = pod.status.phase if pod is not None and pod.status is not None else None
            if phase == "Pending" and self._pending_too_long(flight):
                self._pod_lost(
                    flight,
                    f"its pod was still Pending after {self.settings.kubernetes_pending_timeout:g}s "
                    f"(kubernetes_pending_timeout): {_why(pod)}",
                )
                del self._pods[key]
                self._delete(key)
                continue
            if pod is not None and phase not in ("Failed", "Succeeded"):
                continue
            reason = "its pod is gone" if pod is None else f"its pod ended {phase}: {_why(pod)}"
            self._pod_lost(flight, reason)

    def _pending_too_long(self, flight: _Flight) -> bool:
        sent = flight.published_at
        return sent is not None and sent > 0 and time.monotonic() - sent > self.settings.kubernetes_pending_timeout

    def _pod_lost(self, flight: _Flight, reason: str) -> None:
        key = flight.key
        outcome = failed_outcome(  # its pod ended without recording the try: its callbacks never ran
            flight.node, key.try_number, SystemClock(), reason, max_tries=flight.max_tries, alerts_due=True
        )
        with transaction(self.engine) as conn:
            found = remote_repo.end_try(
                conn,
                flight.run_pk,
                key.task_id,
                key.try_number,
                outcome,
                encode_outcome(outcome),
                expected=(TaskState.QUEUED, TaskState.RUNNING),
            )
        if found is None:
            log.warning("%s: %s", try_name(key), reason)
            self._finish(flight, outcome)

    def _delete(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        try:
            self.api.delete_namespaced_pod(name, namespace)
        except Exception as exc:  # it may be gone already
            log.debug("could not delete pod %s: %s", key, exc)

    def cancel(self, key: Any, reason: str) -> None:
        super().cancel(key, reason)
        for name, flight in list(self._pods.items()):
            if flight.key == key:
                self._delete(name)


def _why(pod: Any) -> str:
    status = pod.status
    for container in status.container_statuses or []:
        state = container.state
        if state is not None and state.terminated is not None:
            t = state.terminated
            return f"container {container.name} exited {t.exit_code} ({t.reason or 'no reason'})"
        if state is not None and state.waiting is not None:  # ImagePullBackOff, CreateContainerConfigError...
            w = state.waiting
            return f"container {container.name} waiting: {w.reason or 'no reason'}" + (
                f" ({w.message})" if w.message else ""
            )
    for condition in status.conditions or []:  # Unschedulable: no node fits
        if condition.status == "False" and (condition.reason or condition.message):
            return f"{condition.type} {condition.reason or ''}: {condition.message or ''}".strip()
    return str(status.reason or status.message or "no reason given")
