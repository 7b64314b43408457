"""Code bundles: the flows folder as one archive named by the hash of its content.

The scheduler publishes a bundle whenever the folder's content changes (looked at no more than
every few seconds, by file sizes and modification times first); a try request names the bundle
its code comes from. A worker fetches a bundle once, unpacks it into its cache
(``$DUCTWORK_HOME/bundles/<hash>``, made complete by a rename, so a worker killed half-way
leaves no half bundle) and imports flows from there, once per bundle in each process.

The hash covers each file's path and bytes, nothing else: the same folder gives the same hash
on any machine, whatever its timestamps. Bundles live in the database, or at ``bundle_url``
(an fsspec URL) with their location in the database. Or the flows come from a git repository
(``flows_git_url``): the code version is then the commit the scheduler's flows folder is at, and
workers check that commit out.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from ductwork.engine.remote.wire import CodeRef
from ductwork.errors import DuctworkError, NotFoundError
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import remote as remote_repo

log = logging.getLogger(__name__)

_SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".venv"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")
_COMPLETE = ".ductwork-bundle-complete"


class BundleError(DuctworkError):
    """A bundle cannot be built, stored, fetched or unpacked."""


@dataclass(frozen=True)
class Bundle:
    digest: str
    data: bytes
    files: int


def bundle_files(folder: Path) -> Iterator[Path]:
    """The files a bundle holds, in a stable order (sorted paths; caches and VCS folders left out).

    Symbolic links are followed, as the scheduler's own imports follow them (a ``common`` link
    to shared code was parsed on the scheduler and missing on the workers); a folder reached
    twice (a link to a parent) is walked once, and a link to nothing is left out."""
    walked: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in walked:
            dirs[:] = []
            continue
        walked.add(real)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(_SKIP_SUFFIXES) or name.startswith("."):
                continue
            path = Path(root) / name
            if path.is_symlink() and not path.exists():
                continue
            yield path


def fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """A cheap summary (path, size, mtime) that changes when the folder's content may have."""
    out = []
    for path in bundle_files(folder):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path.relative_to(folder)), st.st_size, st.st_mtime_ns))
    return tuple(out)


def build_bundle(folder: str | Path) -> Bundle:
    """The folder as a gzipped tar with normalized metadata, and its content hash."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"the flows folder {str(folder)!r} does not exist: nothing to bundle")
    digest = hashlib.sha256()
    raw = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in bundle_files(folder):
            rel = path.relative_to(folder).as_posix()
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise BundleError(f"cannot read {path} for the code bundle: {exc}") from None
            # A script the flow runs (``{{ dag.folder }}/scripts/load.sh``) keeps its execute
            # bit: a BashOperator running it failed with "Permission denied" on the workers.
            executable = os.access(path, os.X_OK)
            digest.update(rel.encode() + (b"\1" if executable else b"\0") + len(data).to_bytes(8, "big") + data)
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o755 if executable else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
            count += 1
    packed = gzip.compress(raw.getvalue(), mtime=0)
    return Bundle(digest.hexdigest()[:32], packed, count)


def publish_bundle(engine: Engine, bundle: Bundle, bundle_url: str = "") -> None:
    """Store the bundle (once: bundles are immutable) in the database or at ``bundle_url``; one
    stored already is marked current again (retention keeps the bundles published lately)."""
    with read_transaction(engine) as conn:
        stored = remote_repo.has_bundle(conn, bundle.digest)
        limit = None if stored or bundle_url else remote_repo.largest_statement(conn)
    if limit is not None and _statement_size(bundle) > limit:
        raise BundleError(
            f"the flows folder's code bundle is {_mb(len(bundle.data))}, more than the database takes in one "
            f"statement (max_allowed_packet = {_mb(limit)}): set bundle_url to keep bundles in a file store "
            "(s3://..., a shared folder), raise max_allowed_packet on the server, or move large data files "
            "out of the flows folder"
        )
    if stored:
        with transaction(engine) as conn:
            remote_repo.touch_bundle(conn, bundle.digest)
        return
    location = None
    data: bytes | None = bundle.data
    if bundle_url:
        import fsspec

        location = f"{bundle_url.rstrip('/')}/{bundle.digest}.tar.gz"
        try:
            with fsspec.open(location, "wb") as fh:
                fh.write(bundle.data)
        except Exception as exc:
            raise BundleError(f"cannot write the code bundle to {location}: {exc}") from None
        data = None
    with transaction(engine) as conn:
        remote_repo.put_bundle(
            conn, bundle.digest, size=len(bundle.data), files=bundle.files, data=data, location=location
        )


def _statement_size(bundle: Bundle) -> int:
    """The bytes of the statement that stores ``bundle``: the driver escapes 7 byte values of
    256 in binary data (about 3% of compressed bytes), plus the statement's own text."""
    return len(bundle.data) + len(bundle.data) // 32 + 64 * 1024


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


class BundleSource:
    """The scheduler's side: the current code version of the flows folder, published when it
    changes. ``ref()`` is cheap to call for every try: the folder is looked at no more than
    every ``recheck`` seconds."""

    def __init__(
        self, engine: Engine, folder: Path, *, bundle_url: str = "", git_url: str = "", recheck: float = 2.0
    ) -> None:
        self.engine = engine
        self.folder = folder.resolve()
        self.bundle_url = bundle_url
        self.git_url = git_url
        self.recheck = recheck
        self._checked = -1e9
        self._print: object = None
        self._ref: CodeRef | None = None
        self._failed: BundleError | None = None
        self._said_dirty: tuple[str, str] | None = None
        self._said_unpushed: str | None = None

    def ref(self, flow_file: str | None) -> CodeRef | None:
        """The code version a try is sent with; ``BundleError`` while the folder's current
        content cannot be published (never the version before it: that is not the code the
        scheduler parsed)."""
        now = time.monotonic()
        # While the folder cannot be published it is looked at for every try (its files' sizes
        # and times): a try sent just after the fix (a big file moved out) failed with the old error.
        if self._ref is None or now - self._checked >= self.recheck:
            self._checked = now
            self._refresh()
        if self._failed is not None:
            raise self._failed
        if self._ref is None:
            return None
        path = None
        if flow_file:
            with contextlib.suppress(ValueError):
                path = Path(flow_file).resolve().relative_to(self.folder).as_posix()
        return CodeRef(self._ref.kind, self._ref.ref, path, self._ref.url, self._ref.subdir)

    def _say_uncommitted(self, commit: str) -> None:
        """Workers check out the commit; the scheduler parses the folder as it is. An edit not
        committed was in the scheduler's graph and not in what the workers ran, silently: said
        once per commit, naming the files, while the folder differs from it."""
        try:
            changed = _git(self.folder, "status", "--porcelain", "--untracked-files=no", "--", ".")
        except BundleError:
            return
        said = (commit, changed)
        if changed and said != self._said_dirty:
            files = ", ".join(line[3:] for line in changed.splitlines()[:5])
            log.warning(
                "the flows folder %s has changes not committed (%s): the workers run commit %s, without them; "
                "commit (and push to %s) for the workers to run them",
                self.folder,
                files,
                commit[:12],
                hide_credentials(self.git_url),
            )
        self._said_dirty = said if changed else None

    def _say_unpushed(self, commit: str) -> None:
        """The workers fetch the commit from ``flows_git_url``: one only made here failed every
        try, the reason said only on the workers. Said once per commit, from what this copy
        knows of its remotes (no network): no remote branch it has fetched contains it."""
        if commit == self._said_unpushed:
            return
        self._said_unpushed = commit
        try:
            if _git(self.folder, "remote") and not _git(self.folder, "branch", "-r", "--contains", commit):
                log.warning(
                    "the flows folder %s is at commit %s, which no remote branch this copy knows has: if it is not "
                    "pushed to %s, the workers cannot fetch it and its tries fail; push it",
                    self.folder,
                    commit[:12],
                    hide_credentials(self.git_url),
                )
        except BundleError:
            return

    def _refresh(self) -> None:
        if self.git_url:
            commit, subdir = git_head(self.folder)
            self._ref = CodeRef("git", commit, None, self.git_url, subdir)
            self._say_uncommitted(commit)
            self._say_unpushed(commit)
            return
        if not self.folder.is_dir():
            self._ref = None
            return
        current = fingerprint(self.folder)
        if current == self._print and (self._ref is not None or self._failed is not None):
            return
        try:
            bundle = build_bundle(self.folder)
            publish_bundle(self.engine, bundle, self.bundle_url)
        except BundleError as exc:  # until the folder changes: building it again would not help
            self._print, self._ref, self._failed = current, None, exc
            return
        self._print = current
        self._ref = CodeRef("bundle", bundle.digest, None)
        self._failed = None


def _mark_used(marker: Path) -> bool:
    """Whether a code version is unpacked (its completion marker exists); if so, the marker's
    time says it was used now (at most every few minutes: one stat per try, a write rarely)."""
    try:
        changed = marker.stat().st_mtime
    except OSError:
        return False
    now = time.time()
    if now - changed > _USE_MARKED_EVERY:
        with contextlib.suppress(OSError):
            os.utime(marker, (now, now))
    return True


def git_head(folder: Path) -> tuple[str, str]:
    """The commit a git working copy is at, and the folder's path inside the repository."""
    try:
        commit = _git(folder, "rev-parse", "HEAD")
        prefix = _git(folder, "rev-parse", "--show-prefix")
    except BundleError as exc:
        raise BundleError(
            f"flows_git_url is set, but the flows folder {folder} is not a git working copy: {exc}"
        ) from None
    return commit, prefix.rstrip("/")


_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://)(?P<user>[^:/@\s'\"]*)(?::[^@/\s'\"]*)?@")


def hide_credentials(text: str) -> str:
    """``text`` with the credentials of the URLs in it hidden: ``https://deploy:TOKEN@host`` and
    a token given as the user (``https://TOKEN@github.com``). A failed clone's message reached
    the try's error, the worker's log, the web UI and failure e-mails with the deploy token."""

    def hidden(found: re.Match[str]) -> str:
        whole = found.group(0)
        if ":" in whole[len(found["scheme"]) :]:
            return f"{found['scheme']}{found['user']}:***@"
        return f"{found['scheme']}***@"

    return _CREDENTIALS.sub(hidden, text)


def _git(cwd: Path, *args: str) -> str:
    shown = hide_credentials(" ".join(args))
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BundleError(f"git {shown} failed: {hide_credentials(str(exc))}") from None
    if done.returncode != 0:
        why = hide_credentials("\n".join(done.stderr.strip().splitlines()[-1:])) or str(done.returncode)
        raise BundleError(f"git {shown} failed: {why}")
    return done.stdout.strip()


UNUSED_KEPT = 24 * 3600.0
"""How long (seconds) a worker keeps an unpacked code version no try has used."""
KEPT_AT_LEAST = 3
"""Code versions a worker keeps whatever their age (the newest used)."""
_USE_MARKED_EVERY = 600.0


class BundleCache:
    """The worker's side: code versions unpacked under ``folder``, fetched when first needed.
    Each new version unpacked makes the worker drop those unused for a day (all but the last
    few): one was kept per change of the flows folder, for ever."""

    def __init__(self, folder: Path, engine: Engine) -> None:
        self.folder = folder
        self.engine = engine

    def path(self, code: CodeRef) -> Path:
        """The local folder that holds the flows folder at version ``code``."""
        name = f"{'git-' if code.kind == 'git' else ''}{code.ref}"
        target = self.folder / name
        if _mark_used(target / _COMPLETE):
            return target / code.subdir if code.subdir else target
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.folder))
        try:
            if code.kind == "git":
                self._checkout(code, staging)
            else:
                self._unpack(code.ref, staging)
            (staging / _COMPLETE).write_text(code.ref)
            try:
                staging.rename(target)
            except OSError:
                if not (target / _COMPLETE).exists():  # another process of this worker won the race
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.prune(keep=target)
        return target / code.subdir if code.subdir else target

    def prune(self, *, keep: Path, now: float | None = None) -> list[str]:
        """Drop the code versions no try of this worker used for ``UNUSED_KEPT`` seconds, but
        the ``KEPT_AT_LEAST`` used last (``keep`` among them), and staging folders as old (a
        worker killed while unpacking). A version is first renamed away, so another process
        of the worker that looks for it meanwhile unpacks it again rather than see it half
        deleted. The names dropped."""
        now = time.time() if now is None else now
        versions: list[tuple[float, Path]] = []
        dropped: list[str] = []
        for child in self.folder.iterdir():
            if child == keep or child.name == "git-mirror" or not child.is_dir():
                continue
            try:
                used = (child / _COMPLETE).stat().st_mtime if not child.name.startswith(".") else child.stat().st_mtime
            except OSError:
                continue
            if child.name.startswith("."):  # staging, or a version being deleted
                if now - used > UNUSED_KEPT:
                    shutil.rmtree(child, ignore_errors=True)
                continue
            versions.append((used, child))
        versions.sort(reverse=True)
        for used, child in versions[KEPT_AT_LEAST - 1 :]:
            if now - used <= UNUSED_KEPT:
                continue
            gone = self.folder / f".gone-{child.name}-{os.getpid()}"
            try:
                child.rename(gone)
            except OSError:
                continue
            shutil.rmtree(gone, ignore_errors=True)
            dropped.append(child.name)
        return dropped

    def _unpack(self, digest: str, into: Path) -> None:
        with read_transaction(self.engine) as conn:
            found = remote_repo.get_bundle(conn, digest)
        if found is None:
            raise NotFoundError(f"code bundle {digest} is not in the database (was it published by a scheduler?)")
        data, location = found
        if data is None and location:
            import fsspec

            try:
                with fsspec.open(location, "rb") as fh:
                    data = fh.read()
            except Exception as exc:
                raise BundleError(f"cannot fetch code bundle {digest} from {location}: {exc}") from None
        if data is None:
            raise BundleError(f"code bundle {digest} has neither data nor a location")
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                tar.extractall(into, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BundleError(f"code bundle {digest} cannot be unpacked: {exc}") from None

    def _checkout(self, code: CodeRef, into: Path) -> None:
        mirror = self.folder / "git-mirror"
        if not (mirror / "HEAD").exists():
            _git(self.folder, "clone", "--quiet", "--bare", code.url, str(mirror))
        try:
            _git(mirror, "cat-file", "-e", f"{code.ref}^{{commit}}")
        except BundleError:
            _git(mirror, "fetch", "--quiet", code.url, "+refs/heads/*:refs/heads/*")
            try:
                _git(mirror, "cat-file", "-e", f"{code.ref}^{{commit}}")
            except BundleError:
                raise BundleError(
                    f"commit {code.ref[:12]} is not on any branch of {hide_credentials(code.url)}: the scheduler's "
                    "flows folder is at "
                    "that commit, which was not pushed there. Push it (or point flows_git_url at the repository "
                    "that has it); the tries sent until then fail"
                ) from None
        archive = subprocess.run(
            ["git", "archive", "--format=tar", code.ref], cwd=mirror, capture_output=True, timeout=300, check=False
        )
        if archive.returncode != 0:
            why = archive.stderr.decode(errors="replace")[-300:]
            raise BundleError(
                f"commit {code.ref} of {hide_credentials(code.url)} cannot be checked out: {hide_credentials(why)}"
            )
        with tarfile.open(fileobj=io.BytesIO(archive.stdout), mode="r:") as tar:
            tar.extractall(into, filter="data")
