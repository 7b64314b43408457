"""The fsspec URLs a scheduler and a worker hand to remote tries (``remote_log_url``,
``bundle_url``), checked when the process starts.

A URL whose protocol fsspec does not know (a typo), or whose package is not installed on the
host (``s3://`` without s3fs: the deployment guide's ``ductwork[fs]`` brings fsspec alone),
was found only by the workers, once per try: the try was claimed, then its log could not be
opened, and it sat running until the scheduler failed it as if its worker had been lost (its
retries spent the same way). Said at start, it is one line naming the setting and the extra
to install.
"""

from __future__ import annotations

from ductwork.errors import DuctworkError
from ductwork.settings import Settings, redact_url

OFFLOAD = (("results_offload_url", "DUCTWORK_RESULTS_OFFLOAD_URL"),)
"""Read by every executor's tries, local ones too (``ductwork run``, a local scheduler's
workers): a typo failed every try whose result passed the threshold with fsspec's ``Protocol
not known``, its retries spent, and ended ``ductwork run`` in a traceback."""

CHECKED = (("remote_log_url", "DUCTWORK_REMOTE_LOG_URL"), ("bundle_url", "DUCTWORK_BUNDLE_URL"), *OFFLOAD)


def check_store_urls(settings: Settings, checked: tuple[tuple[str, str], ...] = CHECKED) -> None:
    """Raise ``DuctworkError`` for the first of ``checked`` that this host cannot open."""
    for name, variable in checked:
        url = str(getattr(settings, name, "") or "")
        problem = store_url_problem(url)
        if problem:
            raise DuctworkError(f"{name} {redact_url(url)!r} ({variable}): {problem}")


def store_url_problem(url: str) -> str | None:
    """Why fsspec on this host cannot open ``url`` (``None``: it can, or it is a plain path or
    ``file://``, which need no fsspec). Chained URLs (``simplecache::s3://...``) are checked
    link by link."""
    protocols = [part.split("://", 1)[0] for part in url.split("::") if "://" in part]
    protocols = [p for p in protocols if p and p != "file"]
    if not protocols:
        return None
    try:
        from fsspec.registry import get_filesystem_class, known_implementations
    except ModuleNotFoundError:
        return "this needs the Python package 'fsspec', which is not installed: pip install 'ductwork[fs]'"
    for protocol in protocols:
        try:
            get_filesystem_class(protocol)
        except ValueError:
            return f"fsspec knows no protocol {protocol!r} (s3://bucket/path, gs://bucket/path, file:///shared/path...)"
        except ImportError as exc:
            from ductwork.cli.state import EXTRAS

            module = str(known_implementations.get(protocol, {}).get("class", "")).split(".", 1)[0]
            extra = EXTRAS.get(module)
            if extra:
                return (
                    f"{protocol}:// needs the Python package {module!r}, which is not installed: "
                    f"pip install 'ductwork[{extra}]'"
                )
            return f"{protocol}:// cannot be opened on this host: {exc}"
    return None
