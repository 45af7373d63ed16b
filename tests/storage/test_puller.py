"""`slipway pull`: complete, verified, atomic, and robust to connections dropped mid-download."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixtures.storage import BackendLocation, CuttingProxy, StorageCredentials
from slipway.storage import open_store, upload_tree
from slipway.storage.puller import PARTIAL_MARKER, cli_main, receipt_path

SMALL_PARTS = ["--part-size-mib", "1", "--multipart-threshold-mib", "1", "--quiet"]


def make_model(root: Path) -> dict[str, bytes]:
    files = {
        "saved_model.pb": os.urandom(20_000),
        "variables/variables.index": os.urandom(300),
        "variables/variables.data-00000-of-00001": os.urandom(3 * 1024 * 1024 + 5),
        "assets/empty.txt": b"",
        "fingerprint.pb": b"\x08\x01",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if PARTIAL_MARKER in p.name]


@pytest.fixture
def model_uri(
    any_backend: BackendLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict]:
    source = tmp_path / "export"
    files = make_model(source)
    upload_tree(source, any_backend.store(), "penguins/3")
    _credentials_into_env(monkeypatch, any_backend.credentials)
    return any_backend.uri + "/penguins/3", files


def _credentials_into_env(monkeypatch: pytest.MonkeyPatch, credentials: StorageCredentials | None) -> None:
    """The init container gets the Secret as environment variables: do the same."""
    if credentials is None:
        return
    names = {
        "aws_access_key_id": "AWS_ACCESS_KEY_ID",
        "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
        "aws_region": "AWS_REGION",
        "aws_endpoint_url": "AWS_ENDPOINT_URL",
        "storage_emulator_host": "STORAGE_EMULATOR_HOST",
        "google_project": "GOOGLE_CLOUD_PROJECT",
        "azure_connection_string": "AZURE_STORAGE_CONNECTION_STRING",
    }
    for field, variable in names.items():
        value = getattr(credentials, field)
        if value:
            monkeypatch.setenv(variable, value)


def test_pull_gives_tf_serving_layout_and_is_idempotent(
    model_uri: tuple[str, dict[str, bytes]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri, files = model_uri
    dest = tmp_path / "models" / "penguins" / "3"
    assert cli_main([uri, str(dest), "--workers", "4", *SMALL_PARTS]) == 0
    assert tree(dest) == files
    assert (dest / "saved_model.pb").is_file()
    assert Path(receipt_path(str(dest))).is_file()
    assert leftovers(dest.parent) == []
    assert cli_main([uri, str(dest)]) == 0  # already there: nothing downloaded again
    assert "already holds" in capsys.readouterr().err


def test_pull_replaces_a_stale_directory_and_clears_interrupted_attempts(
    model_uri: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    uri, files = model_uri
    dest = tmp_path / "3"
    dest.mkdir()
    (dest / "stale.pb").write_bytes(b"old")
    (tmp_path / f".3{PARTIAL_MARKER}abc").mkdir()  # what a killed pull leaves behind
    assert cli_main([uri, str(dest), "--quiet"]) == 0
    assert tree(dest) == files
    assert leftovers(tmp_path) == []


def test_pull_of_nothing_fails_and_creates_nothing(
    any_backend: BackendLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _credentials_into_env(monkeypatch, any_backend.credentials)
    dest = tmp_path / "out"
    code = cli_main([any_backend.uri + "/no/such/model", str(dest), "--quiet"])
    assert code == 1
    assert not dest.exists()


def test_bad_uri_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["http://example.com/model", str(tmp_path / "x")]) == 2
    assert "unsupported scheme 'http'" in capsys.readouterr().err


def _through_proxy(backend: BackendLocation, proxy: CuttingProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    assert backend.server is not None
    endpoint = backend.server.endpoint.replace(f":{backend.server.process.port}", f":{proxy.port}")
    if backend.scheme == "s3":
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    elif backend.scheme == "gs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
    else:
        connection = backend.credentials.azure_connection_string if backend.credentials else ""
        assert connection
        monkeypatch.setenv(
            "AZURE_STORAGE_CONNECTION_STRING", connection.replace(backend.server.endpoint, endpoint)
        )


def test_dropped_connections_are_retried(
    network_backend: BackendLocation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cutting_proxy: Callable[[int, int, int], CuttingProxy],
) -> None:
    files = make_model(tmp_path / "export")
    upload_tree(tmp_path / "export", network_backend.store(), "m/1")
    _credentials_into_env(monkeypatch, network_backend.credentials)
    assert network_backend.server is not None
    proxy = cutting_proxy(network_backend.server.process.port, 200_000, 3)
    _through_proxy(network_backend, proxy, monkeypatch)
    dest = tmp_path / "m" / "1"
    assert cli_main([network_backend.uri + "/m/1", str(dest), "--workers", "4", *SMALL_PARTS]) == 0
    assert proxy.cuts_done == 3
    assert tree(dest) == files


def test_a_server_that_keeps_dropping_fails_cleanly(
    network_backend: BackendLocation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cutting_proxy: Callable[[int, int, int], CuttingProxy],
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_model(tmp_path / "export")
    upload_tree(tmp_path / "export", network_backend.store(), "m/1")
    _credentials_into_env(monkeypatch, network_backend.credentials)
    assert network_backend.server is not None
    proxy = cutting_proxy(network_backend.server.process.port, 200_000, -1)
    _through_proxy(network_backend, proxy, monkeypatch)
    dest = tmp_path / "m" / "1"
    code = cli_main([network_backend.uri + "/m/1", str(dest), "--attempts", "2", *SMALL_PARTS])
    assert code == 1
    assert proxy.cuts_done >= 2
    assert not dest.exists()
    assert leftovers(dest.parent) == []
    assert "left unchanged" in capsys.readouterr().err


def test_pull_verifies_what_the_store_reports(any_backend: BackendLocation, tmp_path: Path) -> None:
    """A listing whose size disagrees with the bytes served is an IntegrityError, and nothing is left."""
    from slipway.storage import IntegrityError, ObjectInfo
    from slipway.storage.transfer import download_tree

    store = any_backend.store()
    store.write_bytes("f.bin", b"12345")
    real = store.list

    def lying_list(prefix: str = "") -> Iterator[ObjectInfo]:
        return iter([ObjectInfo(i.key, i.size + 1, i.etag, i.uri) for i in real(prefix)])

    store.list = lying_list  # type: ignore[method-assign]
    with pytest.raises(IntegrityError, match=r"f\.bin"):
        download_tree(store, str(tmp_path / "out"))


@pytest.mark.parametrize("algorithm", ["md5", "crc32c"])
def test_a_checksum_mismatch_is_an_integrity_error(
    any_backend: BackendLocation, tmp_path: Path, algorithm: str
) -> None:
    """Single-stream and ranged downloads alike are checked against the checksum the listing reports."""
    import dataclasses

    from slipway.storage import IntegrityError, ObjectInfo
    from slipway.storage.transfer import download_tree

    store = any_backend.store()
    store.write_bytes("small/f.bin", b"12345")
    store.write_bytes("large/f.bin", os.urandom(3 << 20))
    real = store.list
    wrong = {"md5": "0" * 32, "crc32c": "00000000"}[algorithm]

    def lying_list(prefix: str = "") -> Iterator[ObjectInfo]:
        for info in real(prefix):
            yield dataclasses.replace(
                info,
                md5=wrong if algorithm == "md5" else None,
                crc32c=wrong if algorithm == "crc32c" else None,
            )

    store.list = lying_list  # type: ignore[method-assign]
    for name in ("small", "large"):
        with pytest.raises(IntegrityError, match="does not match"):
            download_tree(store, str(tmp_path / name), name, part_size=1 << 20, multipart_threshold=1 << 20)
    store.list = real  # type: ignore[method-assign]
    download_tree(store, str(tmp_path / "good"), part_size=1 << 20, multipart_threshold=1 << 20)
    assert (tmp_path / "good" / "small" / "f.bin").read_bytes() == b"12345"


def test_open_store_reads_env_credentials(model_uri: tuple[str, dict[str, bytes]]) -> None:
    uri, files = model_uri
    assert open_store(uri).read_bytes("saved_model.pb") == files["saved_model.pb"]


def test_directory_placeholders_are_not_files(
    network_backend: BackendLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consoles create zero-byte `dir/` objects; a pull ignores them instead of failing or writing them."""
    store = network_backend.store()
    store.write_bytes("m/1/variables/", b"")
    store.write_bytes("m/1/saved_model.pb", b"pb")
    store.write_bytes("m/1/variables/variables.index", b"ix")
    _credentials_into_env(monkeypatch, network_backend.credentials)
    dest = tmp_path / "1"
    assert cli_main([network_backend.uri + "/m/1", str(dest), "--quiet"]) == 0
    assert tree(dest) == {"saved_model.pb": b"pb", "variables/variables.index": b"ix"}
