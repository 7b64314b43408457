"""Call HTTP APIs with httpx (``pip install 'ductwork[http]'``): an operator and a sensor."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from ductwork.core.connections import Connection
from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator
from ductwork.core.sensors import BaseSensorOperator
from ductwork.errors import DefinitionError, TaskExecutionError
from ductwork.integrations._connections import task_connection
from ductwork.integrations._deps import require

SUCCESS_CODES = tuple(range(200, 300))
RESPONSE_FORMATS = ("json", "text", "auto", "none")


def httpx_module(what: str) -> Any:
    return require("httpx", extra="http", what=what)


def send(
    *,
    what: str,
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 30.0,
    verify: bool | str = True,
    follow_redirects: bool = True,
) -> Any:
    """One request; connection problems become ``TaskExecutionError`` naming ``what`` and the URL."""
    httpx = httpx_module(what)
    try:
        with httpx.Client(timeout=timeout, verify=verify, follow_redirects=follow_redirects) as client:
            return client.request(
                method.upper(), url, headers=dict(headers or {}), params=params, json=json, data=data, auth=auth
            )
    except httpx.InvalidURL as exc:
        raise TaskExecutionError(f"{what}: invalid URL {url!r}: {exc}") from exc
    except httpx.UnsupportedProtocol as exc:
        raise TaskExecutionError(f"{what}: unsupported URL scheme in {url!r}: use http:// or https://") from exc
    except httpx.TimeoutException as exc:
        raise TaskExecutionError(f"{what}: {method.upper()} {url} timed out after {timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise TaskExecutionError(f"{what}: {method.upper()} {url} failed: {type(exc).__name__}: {exc}") from exc


def status_error(what: str, response: Any, expected: Collection[int]) -> TaskExecutionError:
    body = response.text[:500]
    wanted = "2xx" if set(expected) == set(SUCCESS_CODES) else ", ".join(map(str, sorted(expected)))
    return TaskExecutionError(
        f"{what}: {response.request.method} {response.request.url} returned {response.status_code} "
        f"{response.reason_phrase} (expected {wanted}); body: {body!r}"
    )


def with_connection(
    conn: Connection, url: str, headers: Mapping[str, str], auth: tuple[str, str] | None
) -> tuple[str, dict[str, str], tuple[str, str] | None]:
    """The URL under the connection's base URL (absolute URLs are kept), its default headers
    under the task's, and its login as basic authentication when the task gives none."""
    if "://" not in url:
        url = conn.base_url().rstrip("/") + ("/" + url.lstrip("/") if url else "")
    default_headers = conn.extra.get("headers") or {}
    merged = {**{str(k): str(v) for k, v in dict(default_headers).items()}, **headers}
    if auth is None and conn.login:
        auth = (conn.login, conn.password or "")
    return url, merged, auth


class HttpOperator(BaseOperator):
    """Sends one HTTP request; the response goes downstream.

    Args:
        url: the URL (templated), with ``params`` as the query string (templated).
        method: GET, POST, PUT, PATCH, DELETE...
        headers: request headers (templated).
        json / data: a JSON body, or form fields / raw text (templated).
        expected_status: status codes that count as success (default: any 2xx); any other
            fails the task with the status and the start of the body.
        response_format: ``"json"``, ``"text"``, ``"auto"`` (JSON when the response says so) or
            ``"none"`` (push nothing).
        response_filter: a callable given the ``httpx.Response`` (and context variables it
            names, like ``ti``); its return value goes downstream instead.
        auth: ``(user, password)`` for basic authentication.
        conn_id: a connection giving the base URL (``https://login:password@host:port/base``):
            ``url`` is then a path under it, the login and password are basic authentication
            (unless ``auth`` is given) and ``extra["headers"]`` are default headers.
    """

    template_fields = ("url", "params", "headers", "json", "data")
    ui_color = "#f4a460"

    def __init__(
        self,
        *,
        url: str = "",
        conn_id: str | None = None,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        expected_status: Collection[int] = SUCCESS_CODES,
        response_format: str = "auto",
        response_filter: Callable[..., Any] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
        verify: bool | str = True,
        follow_redirects: bool = True,
        **kwargs: Any,
    ) -> None:
        owner = f"{type(self).__name__}(task_id={kwargs.get('task_id')!r})"
        if not isinstance(url, str) or (not url and conn_id is None):
            raise DefinitionError(f"{owner}: url must be a non-empty string (or give conn_id)")
        if response_format not in RESPONSE_FORMATS:
            raise DefinitionError(f"{owner}: response_format must be one of {', '.join(RESPONSE_FORMATS)}")
        if json is not None and data is not None:
            raise DefinitionError(f"{owner}: give json or data, not both")
        if response_filter is not None and not callable(response_filter):
            raise DefinitionError(f"{owner}: response_filter must be callable")
        super().__init__(**kwargs)
        self.url = url
        self.conn_id = conn_id
        self.method = method.upper()
        self.headers = dict(headers or {})
        self.params = dict(params) if params is not None else None
        self.json = json
        self.data = data
        self.expected_status = frozenset(expected_status)
        self.response_format = response_format
        self.response_filter = response_filter
        self.auth = auth
        self.timeout = timeout
        self.verify = verify
        self.follow_redirects = follow_redirects

    def request(self) -> Any:
        what = f"task {self.task_id!r}"
        return send(
            what=what,
            method=self.method,
            url=self.url,
            headers=self.headers,
            params=self.params,
            json=self.json,
            data=self.data,
            auth=self.auth,
            timeout=self.timeout,
            verify=self.verify,
            follow_redirects=self.follow_redirects,
        )

    def execute(self, context: TaskContext) -> Any:
        if self.conn_id is not None:
            self.url, self.headers, self.auth = with_connection(
                task_connection(context, self.conn_id, self.task_id), self.url, self.headers, self.auth
            )
        context["log"].info("%s %s", self.method, self.url)
        response = self.request()
        context["log"].info("%s %s -> %d", self.method, response.url, response.status_code)
        if response.status_code not in self.expected_status:
            raise status_error(f"task {self.task_id!r}", response, self.expected_status)
        if self.response_filter is not None:
            from ductwork.core.operators.python import call_with_context

            return call_with_context(self.response_filter, [response], {}, context)
        return self._body(response)

    def _body(self, response: Any) -> Any:
        fmt = self.response_format
        if fmt == "none":
            return None
        is_json = "json" in response.headers.get("content-type", "")
        if fmt == "json" or (fmt == "auto" and is_json):
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise TaskExecutionError(
                    f"task {self.task_id!r}: the response of {self.url} is not JSON ({exc}); "
                    f"body: {response.text[:200]!r}; use response_format='text'"
                ) from exc
        return response.text

    def extra_spec(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url}


class HttpSensor(BaseSensorOperator):
    """Pokes a URL until it answers with an expected status (and ``response_check`` agrees).

    Connection errors and other statuses mean "not yet" (the service may still be starting),
    except the statuses in ``fail_on_status``, which fail the task at once.
    """

    template_fields = ("url", "params", "headers", "json", "data")
    ui_color = "#e8b07a"

    def __init__(
        self,
        *,
        url: str,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        expected_status: Collection[int] = SUCCESS_CODES,
        response_check: Callable[..., Any] | None = None,
        fail_on_status: Collection[int] = (),
        auth: tuple[str, str] | None = None,
        request_timeout: float = 30.0,
        verify: bool | str = True,
        **kwargs: Any,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise DefinitionError(f"HttpSensor(task_id={kwargs.get('task_id')!r}): url must be a non-empty string")
        super().__init__(**kwargs)
        self.url = url
        self.method = method.upper()
        self.headers = dict(headers or {})
        self.params = dict(params) if params is not None else None
        self.json = json
        self.data = data
        self.expected_status = frozenset(expected_status)
        self.response_check = response_check
        self.fail_on_status = frozenset(fail_on_status)
        self.auth = auth
        self.request_timeout = request_timeout
        self.verify = verify

    def poke(self, context: TaskContext) -> bool:
        what = f"task {self.task_id!r}"
        try:
            response = send(
                what=what,
                method=self.method,
                url=self.url,
                headers=self.headers,
                params=self.params,
                json=self.json,
                data=self.data,
                auth=self.auth,
                timeout=self.request_timeout,
                verify=self.verify,
            )
        except TaskExecutionError as exc:
            if "invalid URL" in str(exc) or "unsupported URL scheme" in str(exc):
                raise
            context["log"].info("not reachable yet: %s", exc)
            return False
        if response.status_code in self.fail_on_status:
            raise status_error(what, response, self.expected_status)
        if response.status_code not in self.expected_status:
            context["log"].info("%s answered %d: not yet", self.url, response.status_code)
            return False
        if self.response_check is None:
            return True
        from ductwork.core.operators.python import call_with_context

        return bool(call_with_context(self.response_check, [response], {}, context))

    def extra_spec(self) -> dict[str, Any]:
        return {**super().extra_spec(), "method": self.method, "url": self.url}
