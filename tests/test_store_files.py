"""Files beside the config that a crash or a bad copy can leave broken: the link secret, the store.

Each is either made whole in one step or refused with a one-line error naming the file; never a
silent empty link key, and never an empty or foreign file quietly taken for a new database.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from digest.config import Config, load_config
from digest.errors import ConfigError, StoreError
from digest.store import Store
from digest.tokens import load_secret
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parent.parent
ENV = "DIGEST_TEST_SECRET"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """A config without the secret in the environment: the secret file is used."""
    monkeypatch.delenv(ENV, raising=False)
    return load_config(write_config(tmp_path))


def secret_file(config: Config) -> Path:
    return config.store.path.with_name(config.store.path.name + ".secret")


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# -- the link secret ----------------------------------------------------------------------------


def test_secret_file_is_made_once_private_and_kept(config: Config) -> None:
    path = secret_file(config)
    secret = load_secret(config)
    assert len(secret) >= 16
    assert path.read_bytes().strip() == secret
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret(config) == secret
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE (POSIX)")
def test_a_crash_while_the_secret_is_written_leaves_no_empty_secret(
    config: Config, tmp_path: Path
) -> None:
    # The child is killed (SIGXFSZ) by the first byte it writes to a file: a crash between
    # creating the secret file and writing it.
    script = textwrap.dedent(
        """\
        import resource, signal, sys
        from digest.config import load_config
        from digest.tokens import load_secret

        config = load_config(sys.argv[1])
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        load_secret(config)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "config.toml")],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -signal.SIGXFSZ, result.stderr
    path = secret_file(config)
    assert not path.exists()  # only a temporary was written; nothing was published
    secret = load_secret(config)  # the next run makes a good one
    assert len(secret) >= 16
    assert path.read_bytes().strip() == secret


def test_a_secret_published_first_by_another_process_is_used(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = secret_file(config)
    theirs = b"their-secret-0123456789abcdef"
    real_token = secrets.token_urlsafe

    def race(nbytes: int) -> str:
        # Another process publishes its secret while this one is making its own.
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(theirs)
        return real_token(nbytes)

    monkeypatch.setattr(secrets, "token_urlsafe", race)
    assert load_secret(config) == theirs
    assert path.read_bytes() == theirs
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_processes_racing_to_make_the_secret_all_get_the_same_one(
    config: Config, tmp_path: Path
) -> None:
    # Each round, every child waits for the same go file and then loads the secret at once.
    rounds = 40
    script = textwrap.dedent(
        """\
        import os, sys
        from digest.config import load_config
        from digest.tokens import load_secret

        config = load_config(sys.argv[1])
        print("ready", flush=True)
        for n in range(int(sys.argv[3])):
            while not os.path.exists(f"{sys.argv[2]}{n}"):
                pass
            print(load_secret(config).hex(), flush=True)
        """
    )
    go = str(tmp_path / "go")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "config.toml"), go, str(rounds)],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n", child.communicate(timeout=60)
        for n in range(rounds):
            secret_file(config).unlink(missing_ok=True)
            Path(f"{go}{n}").touch()
            seen = set()
            for child in children:
                assert child.stdout is not None
                line = child.stdout.readline()
                assert line, f"round {n}: a child failed: {child.communicate(timeout=60)[1]}"
                seen.add(line.strip())
            assert len(seen) == 1, f"round {n}: different secrets {seen}"
            secret = bytes.fromhex(seen.pop())
            assert len(secret) >= 16
            assert secret_file(config).read_bytes().strip() == secret
    finally:
        for child in children:
            child.kill()
            child.communicate(timeout=60)


@pytest.mark.parametrize("content", [b"", b" \n\n", b"short-secret\n"])
def test_an_empty_or_short_secret_file_is_refused(config: Config, content: bytes) -> None:
    path = secret_file(config)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_secret(config)
    message = str(caught.value)
    assert "\n" not in message
    if content.strip():
        assert message.startswith(f"{path}: the link secret is too short (12 bytes, at least 16)")
    else:
        assert message == (
            f"{path}: the link secret is empty (a crash while it was created?); delete the file "
            f"to make a new one (links in earlier emails stop working) or set ${ENV}"
        )
    assert path.read_bytes() == content  # left for the operator to look at


def test_the_environment_secret_wins_and_an_empty_one_falls_back_to_the_file(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = secret_file(config)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    monkeypatch.setenv(ENV, "short-choice")  # the operator's choice: no length rule
    assert load_secret(config) == b"short-choice"
    path.write_bytes(b"file-secret-0123456789\n")
    monkeypatch.setenv(ENV, "")
    assert load_secret(config) == b"file-secret-0123456789"


def test_a_folder_in_place_of_the_secret_file_is_refused(config: Config) -> None:
    path = secret_file(config)
    path.mkdir(parents=True)
    with pytest.raises(ConfigError) as caught:
        load_secret(config)
    assert str(caught.value).startswith(f"{path}: cannot read the link secret: ")
    assert "\n" not in str(caught.value)


def test_an_unreadable_secret_file_is_refused(config: Config) -> None:
    path = secret_file(config)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"file-secret-0123456789")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user reads any file (root with CAP_DAC_OVERRIDE)")
        with pytest.raises(ConfigError) as caught:
            load_secret(config)
    finally:
        path.chmod(0o600)
    assert str(caught.value) == (
        f"{path}: cannot read the link secret: Permission denied; let this user read it, "
        f"or set ${ENV}"
    )


# -- the store ----------------------------------------------------------------------------------


def damaged_database(path: Path) -> bytes:
    """A real store whose pages after the 100-byte SQLite header are overwritten."""
    store = Store.open(path)
    store.close()
    data = path.read_bytes()
    path.unlink()
    return data[:100] + random.Random(1).randbytes(len(data) - 100)


NOT_SQLITE = {
    "random bytes": random.Random(0).randbytes(8192),
    "a text file": b"email,name\nkim@example.com,Kim\n" * 40,
    "a few bytes": b"abc",
}


def test_an_empty_store_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "digest.sqlite3"
    path.write_bytes(b"")
    expected = (
        f"{path}: the store file is empty (0 bytes); not a digest database. "
        "Move it away to start a new store"
    )
    with pytest.raises(StoreError) as caught:
        Store.open(path)
    assert str(caught.value) == expected
    with pytest.raises(StoreError) as caught:
        Store.from_url(f"sqlite:///{path}")
    assert str(caught.value) == expected
    assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no -wal, -shm


def test_a_missing_store_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "new" / "digest.sqlite3"
    Store.open(path).close()
    assert path.stat().st_size > 0
    store = Store.open(path)
    assert store.latest_edition() is None
    store.close()


@pytest.mark.parametrize("kind", sorted(NOT_SQLITE))
def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "digest.sqlite3"
    path.write_bytes(NOT_SQLITE[kind])
    with pytest.raises(StoreError) as caught:
        Store.open(path)
    assert str(caught.value) == (
        f"{path}: not a SQLite database (a corrupt file, or one of another kind); "
        "restore it from a backup, or move it away to start a new store"
    )
    assert path.read_bytes() == NOT_SQLITE[kind]


def test_a_damaged_sqlite_file_is_refused_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "digest.sqlite3"
    data = damaged_database(path)
    path.write_bytes(data)
    with pytest.raises(StoreError) as caught:
        Store.open(path)
    assert str(caught.value).startswith(f"{path}: the store file is corrupt (")
    assert "\n" not in str(caught.value)
    assert path.read_bytes() == data


@pytest.mark.parametrize("kind", ["empty", "damaged", *sorted(NOT_SQLITE)])
def test_cli_status_with_a_bad_store_file_is_one_line(
    config: Config, tmp_path: Path, kind: str
) -> None:
    path = config.store.path
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "empty":
        data = b""
    elif kind == "damaged":
        data = damaged_database(tmp_path / "good.sqlite3")
    else:
        data = NOT_SQLITE[kind]
    path.write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(tmp_path / "config.toml"), "status"],
        cwd=ROOT,
        env={**child_env(), ENV: "test-secret"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: ")
    reason = {"empty": "the store file is empty", "damaged": "the store file is corrupt"}
    assert reason.get(kind, "not a SQLite database") in lines[0]
    assert path.read_bytes() == data


@pytest.mark.parametrize("store_backend", ["postgresql"], indirect=True)
def test_a_frozen_session_cannot_hold_its_locks_for_ever(
    store_backend: str, tmp_path: Path
) -> None:
    """On PostgreSQL the store's sessions carry `store.idle_transaction_timeout_seconds`:
    a process that stops inside a transaction (a frozen sender) is cut off by the server,
    which frees the rows it locked, and its next statement fails instead of going on. The
    URL's own options (here the test's search_path) are kept."""
    import time

    import sqlalchemy as sa

    from tests.conftest import store_url

    path = write_config(tmp_path)
    # By default as long as a lease (at least 10 s): the locks go when the leases do.
    derived = load_config(path)
    lease = derived.delivery.lease_seconds or max(60.0, 4 * derived.smtp.timeout)
    assert derived.store.idle_transaction_timeout_seconds == max(10.0, lease)
    text = path.read_text("utf-8").replace(
        "[web]", "idle_transaction_timeout_seconds = 1\n\n[web]", 1
    )
    path.write_text(text, "utf-8")
    config = load_config(path)
    assert config.store.url == store_url() and config.store.idle_transaction_timeout_seconds == 1
    store = Store.from_config(config.store)
    try:
        with store.engine.connect() as conn:
            setting = conn.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar()
            path_setting = conn.execute(sa.text("SHOW search_path")).scalar()
        assert setting == "1s"
        assert store_url().rsplit("search_path%3D", 1)[-1] in str(path_setting)
        conn = store.engine.connect()
        try:
            conn.begin()
            conn.execute(sa.text("SELECT 1"))
            time.sleep(2.5)  # frozen, inside the transaction
            with pytest.raises(sa.exc.DBAPIError, match="idle-in-transaction"):
                conn.execute(sa.text("SELECT 1"))
        finally:
            conn.invalidate()
            conn.close()
        # Through the store, the same is a one-line StoreError, not a traceback.
        with pytest.raises(StoreError, match="idle-in-transaction"), store.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
            time.sleep(2.5)
            conn.execute(sa.text("SELECT 1"))
    finally:
        store.close()
