"""The same behaviour on every backend: S3 (moto server), GCS (fake-gcs-server), Azure (Azurite), file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fixtures.storage import BackendLocation
from slipway.storage import (
    BucketNotFound,
    ObjectNotFound,
    copy_tree,
    download_tree,
    open_store,
    upload_tree,
)


def test_write_read_list_exists_delete(any_backend: BackendLocation) -> None:
    store = any_backend.store()
    store.write_bytes("a/one.txt", b"first")
    store.write_bytes("a/two.bin", bytes(range(256)) * 10)
    store.write_bytes("b.txt", b"")
    assert store.read_bytes("a/one.txt") == b"first"
    assert store.read_bytes("b.txt") == b""
    listing = {info.key: info for info in store.list()}
    assert sorted(listing) == ["a/one.txt", "a/two.bin", "b.txt"]
    assert listing["a/two.bin"].size == 2560
    assert listing["b.txt"].size == 0
    assert listing["a/one.txt"].uri == any_backend.uri + "/a/one.txt"
    assert [i.key for i in store.list("a/")] == ["a/one.txt", "a/two.bin"]
    assert store.exists("a/one.txt")
    assert not store.exists("a/three.txt")
    store.delete("a/one.txt")
    store.delete("a/one.txt")  # absent: not an error
    assert not store.exists("a/one.txt")
    assert [i.key for i in store.list()] == ["a/two.bin", "b.txt"]


def test_keys_may_be_full_uris_below_the_store(any_backend: BackendLocation) -> None:
    store = any_backend.store()
    store.write_bytes(any_backend.uri + "/x/y.json", b"{}")
    assert store.read_bytes("x/y.json") == b"{}"
    with pytest.raises(ValueError, match="not under"):
        store.read_bytes("s3://elsewhere/x/y.json")


def test_unicode_and_deep_paths(any_backend: BackendLocation) -> None:
    store = any_backend.store()
    key = "/".join(f"level-{i}" for i in range(12)) + "/données ünïcode 模型 🚀.txt"
    store.write_bytes(key, b"contenu")
    assert [i.key for i in store.list()] == [key]
    assert store.read_bytes(key) == b"contenu"


def test_overwrite_changes_the_fingerprint_and_identical_listing_keeps_it(
    any_backend: BackendLocation,
) -> None:
    store = any_backend.store()
    store.write_bytes("part-0.csv", b"a,b\n1,2\n")
    first = store.fingerprint()
    assert first == store.fingerprint()
    assert first.startswith("sha256:")
    store.write_bytes("part-1.csv", b"a,b\n3,4\n")
    second = store.fingerprint()
    assert second != first
    store.write_bytes("part-1.csv", b"a,b\n3,5\n")  # same size, new content
    assert store.fingerprint() != second


def test_missing_object_names_the_uri(any_backend: BackendLocation) -> None:
    store = any_backend.store()
    store.write_bytes("present", b"x")
    with pytest.raises(ObjectNotFound) as error:
        store.read_bytes("missing/model.pb")
    assert error.value.uri == any_backend.uri + "/missing/model.pb"
    assert str(error.value).startswith(any_backend.uri + "/missing/model.pb: ")


def test_missing_bucket_is_reported_as_such(network_backend: BackendLocation) -> None:
    uri = f"{network_backend.scheme}://no-such-bucket-{os.getpid()}/models"
    store = open_store(uri, network_backend.credentials)
    with pytest.raises(BucketNotFound) as error:
        list(store.list())
    assert f"no-such-bucket-{os.getpid()}" in str(error.value)
    with pytest.raises(BucketNotFound):
        store.exists("anything")
    secret = network_backend.credentials
    assert secret is not None
    for value in (secret.aws_secret_access_key, secret.azure_connection_string):
        if value:
            assert value not in str(error.value)


def test_denied_access_names_the_uri_never_the_key(azure_server: object) -> None:
    from fixtures.storage import AZURITE_ACCOUNT, StorageServer
    from slipway.storage import AccessDenied, StorageCredentials

    assert isinstance(azure_server, StorageServer)
    container = azure_server.new_bucket()
    wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
    credentials = StorageCredentials(
        azure_account_name=AZURITE_ACCOUNT,
        azure_account_key=wrong_key,
        azure_blob_endpoint=azure_server.endpoint,
    )
    store = open_store(f"az://{container}/models", credentials)
    with pytest.raises(AccessDenied) as error:
        store.read_bytes("m/1/saved_model.pb")
    assert f"az://{container}/models/m/1/saved_model.pb" in str(error.value)
    assert wrong_key not in str(error.value)


def test_upload_download_and_copy_trees(any_backend: BackendLocation, tmp_path: Path) -> None:
    source = tmp_path / "src"
    files = {
        "saved_model.pb": os.urandom(3000),
        "variables/variables.index": b"index",
        "variables/variables.data-00000-of-00001": os.urandom(5 * 1024 * 1024 + 17),
        "assets/empty": b"",
        "assets/vocab ü.txt": "ü\n".encode(),
    }
    for name, data in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    store = any_backend.store()
    assert upload_tree(source, store, "model/1") == len(files)
    # Small parts so the 5 MiB file is fetched as several ranges.
    out = tmp_path / "out"
    download_tree(store, str(out), "model/1", workers=4, part_size=1 << 20, multipart_threshold=1 << 20)
    for name, data in files.items():
        assert (out / name).read_bytes() == data, name
    copy_uri = any_backend.uri + "-copy"
    assert (
        copy_tree(any_backend.uri + "/model", copy_uri, any_backend.credentials, any_backend.credentials) == 5
    )
    copied = open_store(copy_uri, any_backend.credentials)
    big = "1/variables/variables.data-00000-of-00001"
    assert hashlib.sha256(copied.read_bytes(big)).digest() == hashlib.sha256(files[big[2:]]).digest()


def test_copy_across_backends(any_backend: BackendLocation, tmp_path: Path) -> None:
    local = tmp_path / "elsewhere"
    local.mkdir()
    any_backend.store().write_bytes("k/v.txt", b"across")
    assert copy_tree(any_backend.uri, f"file://{local}", any_backend.credentials) == 1
    assert (local / "k" / "v.txt").read_bytes() == b"across"


def test_a_store_opened_on_an_object_uri_reads_and_fingerprints_that_object(
    any_backend: BackendLocation,
) -> None:
    any_backend.store().write_bytes("train/part-0.csv", b"a,b\n1,2\n")
    object_uri = any_backend.uri + "/train/part-0.csv"
    store = open_store(object_uri, any_backend.credentials)
    assert store.read_bytes(object_uri) == b"a,b\n1,2\n"
    before = store.fingerprint()
    assert before != open_store(object_uri + "-absent", any_backend.credentials).fingerprint()
    any_backend.store().write_bytes("train/part-0.csv", b"a,b\n1,3\n")
    assert store.fingerprint() != before


def test_blobs_module_reads_through_the_storage_layer(any_backend: BackendLocation) -> None:
    """slipway.blobs (manifests, data fingerprints) delegates here for every scheme."""
    from slipway import blobs

    any_backend.store().write_bytes("m/1/slipway-manifest.json", b'{"version": 1}')
    uri = any_backend.uri + "/m/1/slipway-manifest.json"
    assert blobs.read_bytes(uri, any_backend.credentials) == b'{"version": 1}'
    assert blobs.exists(uri, any_backend.credentials)
    assert blobs.fingerprint(any_backend.uri + "/m", any_backend.credentials).startswith("sha256:")
    with pytest.raises(blobs.ObjectError, match="no such object"):
        blobs.read_bytes(any_backend.uri + "/m/2/slipway-manifest.json", any_backend.credentials)


def test_a_multi_gigabyte_sparse_file_round_trips(tmp_path: Path) -> None:
    """Offsets beyond 2**31 through the ranged download path (file:// only: the servers keep data in memory
    or re-read it slowly, and the bench covers the large transfers)."""
    root = tmp_path / "store"
    (root / "m").mkdir(parents=True)
    size = (2 << 30) + 4099
    with open(root / "m" / "huge.bin", "wb") as handle:
        handle.truncate(size)
        handle.seek(size - 5)
        handle.write(b"tail!")
        handle.seek(3 << 20)
        handle.write(b"mid")
    out = tmp_path / "out"
    download_tree(open_store(f"file://{root}"), str(out), "m", workers=4, part_size=256 << 20)
    with open(out / "huge.bin", "rb") as handle:
        assert os.fstat(handle.fileno()).st_size == size
        assert os.fstat(handle.fileno()).st_blocks * 512 < 64 << 20  # the holes stayed holes
        handle.seek(size - 5)
        assert handle.read() == b"tail!"
        handle.seek(3 << 20)
        assert handle.read(3) == b"mid"


def test_s3_refusal_names_the_uri_never_the_key(s3_server_enforcing_auth: object) -> None:
    from fixtures.storage import StorageServer
    from slipway.storage import AccessDenied, StorageCredentials

    assert isinstance(s3_server_enforcing_auth, StorageServer)
    credentials = StorageCredentials(
        aws_access_key_id="AKIAUNKNOWNUNKNOWN00",
        aws_secret_access_key="wrong-secret-wrong-secret",
        aws_endpoint_url=s3_server_enforcing_auth.endpoint,
    )
    store = open_store("s3://models/penguins", credentials)
    with pytest.raises(AccessDenied) as error:
        store.read_bytes("3/saved_model.pb")
    assert str(error.value).startswith("s3://models/penguins/3/saved_model.pb: access denied")
    assert "wrong-secret" not in str(error.value)
    with pytest.raises(AccessDenied):
        list(store.list())
