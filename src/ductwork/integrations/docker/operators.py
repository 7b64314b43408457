"""Run a command in a Docker container (``pip install 'ductwork[docker]'``)."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator
from ductwork.core.signals import SkipTask
from ductwork.errors import DefinitionError, TaskExecutionError
from ductwork.integrations._deps import require

PULL_POLICIES = ("always", "if_not_present", "never")
AUTO_REMOVE = ("never", "success", "force")
_VOLUME = re.compile(r"^(?P<source>[^:]+):(?P<target>/[^:]*)(?::(?P<mode>ro|rw))?$")


def _volumes(volumes: Sequence[str] | Mapping[str, Mapping[str, str]], owner: str) -> dict[str, dict[str, str]]:
    """``"/host:/container[:ro]"`` strings (or the SDK's dict form) as the SDK's dict form."""
    if isinstance(volumes, Mapping):
        return {str(k): dict(v) for k, v in volumes.items()}
    out: dict[str, dict[str, str]] = {}
    for item in volumes:
        match = _VOLUME.match(item)
        if match is None:
            raise DefinitionError(f"{owner}: volume {item!r} is not 'source:/container/path[:ro|rw]'")
        out[match["source"]] = {"bind": match["target"], "mode": match["mode"] or "rw"}
    return out


class DockerOperator(BaseOperator):
    """Runs ``command`` in a new container of ``image``; its output goes to the task log and its
    last line downstream (all of it with ``push_output="all"``).

    Args:
        image: the image, e.g. ``"python:3.12-slim"`` (templated).
        command: a string or a list (templated); ``entrypoint`` overrides the image's.
        environment: variables (templated); ``private_environment`` ones are not shown in
            the UI or rendered fields.
        volumes: ``["/host/path:/container/path:ro", "named-volume:/data"]``.
        working_dir, user, network_mode, labels, extra_hosts, privileged, shm_size.
        cpus: CPUs as a float (``0.5``); mem_limit: ``"512m"``, ``"2g"`` or bytes.
        pull_policy: ``"if_not_present"`` (default), ``"always"`` or ``"never"``.
        auto_remove: remove the container ``"never"``, on ``"success"``, or ``"force"`` (always,
            the default).
        docker_url: the engine (``unix:///var/run/docker.sock``, ``tcp://host:2376``); by default
            from the environment (``DOCKER_HOST``).
        timeout: seconds for the container to finish; it is killed after that.
        api_timeout: seconds for each call to the engine.
        skip_on_exit_code: an exit code that ends the try as skipped.
    """

    template_fields = ("image", "command", "environment", "entrypoint", "working_dir")
    ui_color = "#b7e4f7"

    def __init__(
        self,
        *,
        image: str,
        command: str | Sequence[str] | None = None,
        entrypoint: str | Sequence[str] | None = None,
        environment: Mapping[str, str] | None = None,
        private_environment: Mapping[str, str] | None = None,
        volumes: Sequence[str] | Mapping[str, Mapping[str, str]] = (),
        working_dir: str | None = None,
        user: str | None = None,
        network_mode: str | None = None,
        labels: Mapping[str, str] | None = None,
        extra_hosts: Mapping[str, str] | None = None,
        privileged: bool = False,
        cpus: float | None = None,
        mem_limit: str | int | None = None,
        shm_size: str | int | None = None,
        pull_policy: str = "if_not_present",
        auto_remove: str = "force",
        container_name: str | None = None,
        docker_url: str | None = None,
        tls: bool = False,
        timeout: float | None = None,
        api_timeout: float = 60.0,
        push_output: str = "last_line",
        skip_on_exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        owner = f"DockerOperator(task_id={kwargs.get('task_id')!r})"
        if not isinstance(image, str) or not image:
            raise DefinitionError(f"{owner}: image must be a non-empty string")
        if pull_policy not in PULL_POLICIES:
            raise DefinitionError(f"{owner}: pull_policy must be one of {', '.join(PULL_POLICIES)}")
        if auto_remove not in AUTO_REMOVE:
            raise DefinitionError(f"{owner}: auto_remove must be one of {', '.join(AUTO_REMOVE)}")
        if push_output not in ("last_line", "all", "none"):
            raise DefinitionError(f"{owner}: push_output must be 'last_line', 'all' or 'none'")
        if cpus is not None and cpus <= 0:
            raise DefinitionError(f"{owner}: cpus must be positive")
        self.volumes = _volumes(volumes, owner)
        super().__init__(**kwargs)
        self.image = image
        self.command = command if isinstance(command, str) or command is None else list(command)
        self.entrypoint = entrypoint if isinstance(entrypoint, str) or entrypoint is None else list(entrypoint)
        self.environment = dict(environment or {})
        self.private_environment = dict(private_environment or {})
        self.working_dir = working_dir
        self.user = user
        self.network_mode = network_mode
        self.labels = dict(labels or {})
        self.extra_hosts = dict(extra_hosts or {})
        self.privileged = privileged
        self.cpus = cpus
        self.mem_limit = mem_limit
        self.shm_size = shm_size
        self.pull_policy = pull_policy
        self.auto_remove = auto_remove
        self.container_name = container_name
        self.docker_url = docker_url
        self.tls = tls
        self.timeout = timeout
        self.api_timeout = api_timeout
        self.push_output = push_output
        self.skip_on_exit_code = skip_on_exit_code
        self._container: Any = None
        self._lock = threading.Lock()

    # --- the specification (pure) -------------------------------------------------------------
    def build_container_spec(self, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``docker.DockerClient().containers.create``; no I/O.

        With a context, the container is labelled with the flow, run, task and try.
        """
        labels = dict(self.labels)
        if context is not None:
            labels.update(
                {
                    "io.ductwork.flow_id": str(context.get("flow_id", "")),
                    "io.ductwork.run_id": str(context.get("run_id", "")),
                    "io.ductwork.task_id": self.task_id,
                    "io.ductwork.try_number": str(context.get("try_number", "")),
                }
            )
        spec: dict[str, Any] = {
            "image": self.image,
            "command": self.command,
            "entrypoint": self.entrypoint,
            "environment": {**self.environment, **self.private_environment},
            "volumes": self.volumes or None,
            "working_dir": self.working_dir,
            "user": self.user,
            "network_mode": self.network_mode,
            "labels": labels,
            "extra_hosts": self.extra_hosts or None,
            "privileged": self.privileged,
            "nano_cpus": int(self.cpus * 1_000_000_000) if self.cpus is not None else None,
            "mem_limit": self.mem_limit,
            "shm_size": self.shm_size,
            "name": self.container_name,
            "detach": True,
            "tty": False,
            "auto_remove": False,  # removal is ours, after the logs and the exit code are read
        }
        return {k: v for k, v in spec.items() if v is not None}

    # --- running ------------------------------------------------------------------------------
    def _client(self) -> Any:
        docker = require("docker", extra="docker", what=f"task {self.task_id!r} (DockerOperator)")
        where = self.docker_url or "the engine named by DOCKER_HOST (default unix:///var/run/docker.sock)"
        try:
            if self.docker_url:
                client = docker.DockerClient(base_url=self.docker_url, timeout=int(self.api_timeout), tls=self.tls)
            else:
                client = docker.from_env(timeout=int(self.api_timeout))
            client.ping()
        except Exception as exc:  # DockerException, requests' ConnectionError, a bad URL
            raise TaskExecutionError(
                f"task {self.task_id!r}: cannot reach the Docker engine at {where}: {type(exc).__name__}: {exc}. "
                f"Is Docker running, and may this user use its socket?"
            ) from exc
        return client

    def _ensure_image(self, client: Any, log: Any) -> None:
        docker = require("docker", extra="docker", what="DockerOperator")
        if self.pull_policy == "always":
            log.info("pulling %s", self.image)
            client.images.pull(self.image)
            return
        try:
            client.images.get(self.image)
        except docker.errors.ImageNotFound:
            if self.pull_policy == "never":
                raise TaskExecutionError(
                    f"task {self.task_id!r}: image {self.image!r} is not present and pull_policy is 'never'"
                ) from None
            log.info("pulling %s", self.image)
            client.images.pull(self.image)

    def execute(self, context: TaskContext) -> Any:
        log = context["log"]
        client = self._client()
        self._ensure_image(client, log)
        container = client.containers.create(**self.build_container_spec(context))
        with self._lock:
            self._container = container
        succeeded = False
        lines: list[str] = []
        try:
            container.start()
            log.info("started container %s from %s", container.short_id, self.image)
            for chunk in container.logs(stream=True, follow=True):
                for line in chunk.decode("utf-8", errors="replace").splitlines():
                    lines.append(line)
                    print(line, flush=True)
            status = container.wait(timeout=self.timeout)
            code = int(status.get("StatusCode", -1))
            if self.skip_on_exit_code is not None and code == self.skip_on_exit_code:
                raise SkipTask(f"container exited with {code}")
            if code != 0:
                error = (status.get("Error") or {}).get("Message") or ""
                raise TaskExecutionError(
                    f"task {self.task_id!r}: container {container.short_id} ({self.image}) exited with code {code}"
                    + (f": {error}" if error else "")
                )
            succeeded = True
        finally:
            with self._lock:
                self._container = None
            if self.auto_remove == "force" or (self.auto_remove == "success" and succeeded):
                try:
                    container.remove(force=True)
                except Exception:
                    log.warning("could not remove container %s", container.short_id)
        if self.push_output == "none":
            return None
        return "\n".join(lines) if self.push_output == "all" else (lines[-1] if lines else None)

    def on_kill(self) -> None:
        with self._lock:
            container = self._container
        if container is not None:
            try:
                container.stop(timeout=10)
            except Exception:
                pass

    def extra_spec(self) -> dict[str, Any]:
        return {"image": self.image, "command": self.command}
