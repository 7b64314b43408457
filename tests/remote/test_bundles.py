"""Code bundles: named by content, stored once, unpacked once per worker; or a git commit."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ductwork.engine.remote.bundles import BundleCache, BundleError, BundleSource, build_bundle, hide_credentials
from ductwork.engine.remote.wire import CodeRef
from ductwork.store import migrate
from ductwork.store.engine import create_engine


def _folder(root: Path) -> Path:
    flows = root / "flows"
    (flows / "lib" / "__pycache__").mkdir(parents=True)
    (flows / "etl.py").write_text("from lib.helpers import VALUE\n")
    (flows / "lib" / "helpers.py").write_text("VALUE = 1\n")
    (flows / "lib" / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"junk")
    (flows / ".hidden").write_text("x")
    return flows


def test_the_hash_is_the_content_not_the_timestamps(tmp_path: Path) -> None:
    flows = _folder(tmp_path)
    first = build_bundle(flows)
    os.utime(flows / "etl.py", (0, 0))
    again = build_bundle(flows)
    assert first.digest == again.digest and first.data == again.data and first.files == 2
    (flows / "lib" / "helpers.py").write_text("VALUE = 2\n")
    assert build_bundle(flows).digest != first.digest


def test_published_once_and_unpacked_by_a_worker(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate.upgrade(engine)
    flows = _folder(tmp_path)
    source = BundleSource(engine, flows, recheck=0)
    ref = source.ref(str(flows / "etl.py"))
    assert ref is not None and ref.kind == "bundle" and ref.path == "etl.py"
    assert source.ref(str(flows / "etl.py")) == ref  # unchanged folder: same bundle, not rebuilt
    cache = BundleCache(tmp_path / "worker-home" / "bundles", engine)
    root = cache.path(ref)
    assert (root / "etl.py").read_text() == "from lib.helpers import VALUE\n"
    assert not (root / "lib" / "__pycache__").exists() and not (root / ".hidden").exists()
    assert cache.path(ref) == root  # cached
    time.sleep(0.01)
    (flows / "lib" / "helpers.py").write_text("VALUE = 3\n")
    newer = source.ref(str(flows / "etl.py"))
    assert newer is not None and newer.ref != ref.ref
    assert (cache.path(newer) / "lib" / "helpers.py").read_text() == "VALUE = 3\n"
    assert (root / "lib" / "helpers.py").read_text() == "VALUE = 1\n"  # versions are immutable
    engine.dispose()


def test_scripts_keep_their_execute_bit_and_linked_folders_are_bundled(tmp_path: Path) -> None:
    """A BashOperator running ``{{ dag.folder }}/scripts/load.sh`` failed on the workers with
    "Permission denied" (every file was unpacked 0644), and a ``common`` folder linked into the
    flows folder was parsed by the scheduler but missing on the workers."""
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate.upgrade(engine)
    flows = _folder(tmp_path)
    (flows / "scripts").mkdir()
    script = flows / "scripts" / "load.sh"
    script.write_text("#!/bin/sh\necho loaded\n")
    script.chmod(0o755)
    shared = tmp_path / "srv" / "common"
    shared.mkdir(parents=True)
    (shared / "util.py").write_text("SHARED = True\n")
    (shared / "loop").symlink_to(shared)  # a link back up is walked once
    (flows / "common").symlink_to(shared)
    (flows / "gone.py").symlink_to(tmp_path / "nowhere.py")  # a dangling link is left out
    before = build_bundle(flows)
    source = BundleSource(engine, flows, recheck=0)
    ref = source.ref(str(flows / "etl.py"))
    assert ref is not None
    root = BundleCache(tmp_path / "worker-home" / "bundles", engine).path(ref)
    ran = subprocess.run([str(root / "scripts" / "load.sh")], capture_output=True, text=True, check=False)
    assert ran.returncode == 0 and ran.stdout == "loaded\n", ran
    assert (root / "common" / "util.py").read_text() == "SHARED = True\n"
    assert not (root / "gone.py").exists()
    script.chmod(0o644)  # the bit is part of the content: a new version
    assert build_bundle(flows).digest != before.digest
    engine.dispose()


def test_a_git_repository_at_the_schedulers_commit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    repo = tmp_path / "repo"
    flows = repo / "pipelines"
    flows.mkdir(parents=True)
    (flows / "etl.py").write_text("VERSION = 1\n")

    def git(*args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@x"}  # fmt: skip
        return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "one")
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate.upgrade(engine)
    source = BundleSource(engine, flows, git_url=f"file://{repo}", recheck=0)
    ref = source.ref(str(flows / "etl.py"))
    assert ref is not None and ref.kind == "git" and ref.subdir == "pipelines" and ref.path == "etl.py"
    cache = BundleCache(tmp_path / "worker" / "bundles", engine)
    assert (cache.path(ref) / "etl.py").read_text() == "VERSION = 1\n"
    (flows / "etl.py").write_text("VERSION = 2\n")
    git("commit", "-qam", "two")
    second = source.ref(str(flows / "etl.py"))
    assert second is not None and second.ref != ref.ref
    assert (cache.path(second) / "etl.py").read_text() == "VERSION = 2\n"  # fetched the new commit
    assert not [r for r in caplog.records if "not committed" in r.getMessage()]
    # An edit not committed: the scheduler parses it, the workers run the commit. Said once.
    (flows / "etl.py").write_text("VERSION = 3\n")
    with caplog.at_level("WARNING", logger="ductwork.engine.remote.bundles"):
        assert source.ref(str(flows / "etl.py")) == second
        assert source.ref(str(flows / "etl.py")) == second
    said = [r.getMessage() for r in caplog.records if "not committed" in r.getMessage()]
    assert len(said) == 1 and "etl.py" in said[0] and second.ref[:12] in said[0], said
    engine.dispose()


def test_old_bundles_are_deleted_by_retention_but_the_newest_stays(tmp_path: Path) -> None:
    """Every change of the flows folder published a bundle, and none was ever deleted: retention
    deletes those last published before its cutoff, never the one the scheduler sends now, and
    one published again (the folder changed back) counts as new."""
    import datetime as dt

    import sqlalchemy as sa

    from ductwork.services import cleanup
    from ductwork.store.tables import code_bundles

    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate.upgrade(engine)
    flows = _folder(tmp_path)
    source = BundleSource(engine, flows, recheck=0)
    versions = []
    for value in (1, 2, 3):
        (flows / "lib" / "helpers.py").write_text(f"VALUE = {value}\n")
        ref = source.ref(None)
        assert ref is not None
        versions.append(ref.ref)
    with engine.begin() as conn:  # all three were published 40 days ago
        conn.execute(sa.update(code_bundles).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40)))
    (flows / "lib" / "helpers.py").write_text("VALUE = 1\n")  # back to the first version: published again
    assert source.ref(None).ref == versions[0]  # type: ignore[union-attr]
    report = cleanup.clean(engine, older_than=dt.timedelta(days=30), logs=None, dry_run=True)
    assert report.bundles == 2
    report = cleanup.clean(engine, older_than=dt.timedelta(days=30), logs=None)
    assert report.bundles == 2
    with engine.connect() as conn:
        left = set(conn.execute(sa.select(code_bundles.c.hash)).scalars())
    assert left == {versions[0]}
    with engine.begin() as conn:  # the only one left, however old, stays: it is the current code
        conn.execute(sa.update(code_bundles).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=400)))
    assert cleanup.clean(engine, older_than=dt.timedelta(days=30), logs=None).bundles == 0
    engine.dispose()


def test_a_worker_drops_code_versions_unused_for_a_day(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate.upgrade(engine)
    flows = _folder(tmp_path)
    source = BundleSource(engine, flows, recheck=0)
    cache = BundleCache(tmp_path / "worker-home" / "bundles", engine)
    roots = []
    for value in range(5):
        (flows / "lib" / "helpers.py").write_text(f"VALUE = {value}\n")
        ref = source.ref(None)
        assert ref is not None
        roots.append(cache.path(ref))
    assert all(root.is_dir() for root in roots)  # all used within the day: all kept
    two_days_ago = time.time() - 2 * 86400
    for root in roots[:4]:
        os.utime(root / ".ductwork-bundle-complete", (two_days_ago, two_days_ago))
    cache.path(source.ref(None))  # type: ignore[arg-type]  # used now: marked used, nothing unpacked
    (flows / "lib" / "helpers.py").write_text("VALUE = 99\n")
    newest = cache.path(source.ref(None))  # type: ignore[arg-type]
    kept = sorted(p.name for p in cache.folder.iterdir())
    # The new one, the one used now, and the last used of the old ones (three at least); the rest went.
    assert newest.is_dir() and roots[4].is_dir() and roots[3].is_dir()
    assert not any(root.is_dir() for root in roots[:3]), kept
    assert len(kept) == 3
    assert (roots[3] / "lib" / "helpers.py").read_text() == "VALUE = 3\n"
    engine.dispose()


def test_a_commit_not_pushed_is_said_by_the_scheduler_and_the_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The scheduler's flows folder is a clone of ``flows_git_url``; a commit made in it and not
    pushed failed every try on the workers with git's "not a valid object name"."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}  # fmt: skip

    def git(cwd: Path, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout

    origin, clone = tmp_path / "origin.git", tmp_path / "clone"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    (clone / "etl.py").write_text("VERSION = 1\n")
    git(clone, "add", ".")
    git(clone, "commit", "-qm", "one")
    git(clone, "push", "-q", "origin", "HEAD")
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate.upgrade(engine)
    cache = BundleCache(tmp_path / "worker" / "bundles", engine)
    with caplog.at_level("WARNING", logger="ductwork.engine.remote.bundles"):
        source = BundleSource(engine, clone, git_url=f"file://{origin}", recheck=0)
        pushed = source.ref(str(clone / "etl.py"))
        assert pushed is not None and (cache.path(pushed) / "etl.py").read_text() == "VERSION = 1\n"
        assert not [r for r in caplog.records if "push it" in r.getMessage()]
        (clone / "etl.py").write_text("VERSION = 2\n")
        git(clone, "commit", "-qam", "two")
        local = source.ref(str(clone / "etl.py"))
        assert local is not None and local.ref != pushed.ref
        source.ref(str(clone / "etl.py"))
    said = [r.getMessage() for r in caplog.records if "push it" in r.getMessage()]
    assert len(said) == 1 and local.ref[:12] in said[0] and str(origin) in said[0], said
    with pytest.raises(BundleError, match=f"commit {local.ref[:12]} is not on any branch of file://{origin}"):
        cache.path(local)
    git(clone, "push", "-q", "origin", "HEAD")
    assert (cache.path(local) / "etl.py").read_text() == "VERSION = 2\n"
    engine.dispose()


def test_a_failed_clone_does_not_show_the_deploy_token(tmp_path: Path) -> None:
    """The try's error (the web UI, the API, failure e-mails) and the worker's log quoted git's
    command line, token included."""
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate.upgrade(engine)
    cache = BundleCache(tmp_path / "worker" / "bundles", engine)
    ref = CodeRef("git", "0" * 40, "etl.py", "https://deploy:git-tok-SECRET@127.0.0.1:9/flows.git", "")
    with pytest.raises(BundleError) as raised:
        cache.path(ref)
    assert "git-tok-SECRET" not in str(raised.value) and "https://deploy:***@127.0.0.1:9" in str(raised.value)
    engine.dispose()


@given(
    user=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-._~%!$&()*+,;=", max_size=12),
    secret=st.text(alphabet="abcXYZ019_-.~%", min_size=4, max_size=30),
    around=st.sampled_from(["git clone {} /tmp/x", "fatal: unable to access '{}/': refused", "{}"]),
)
def test_credentials_in_any_url_are_hidden(user: str, secret: str, around: str) -> None:
    assume(secret not in user and secret not in around)
    for url in (f"https://{user}:{secret}@example.com/r.git", f"https://{secret}@example.com/r.git"):
        assert secret not in hide_credentials(around.format(url)).replace("example.com/r.git", "")
