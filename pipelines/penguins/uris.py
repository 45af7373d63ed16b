"""Where the steps' inputs and outputs live: a file:// URI or plain path, or an object-storage URI (s3://,
gs://, az://) that the operator's storage layer (`slipway.storage`, in the pipelines image) reads.

Shipped into the steps that call them (see components/base.py): imports inside, nothing module-level."""


def local_path(uri: str) -> str | None:
    """The file-system path of a file:// URI or a plain path; None for any other scheme."""
    import urllib.parse

    if uri.startswith("file://"):
        return urllib.parse.urlparse(uri).path
    return None if "://" in uri else uri


def as_uri(uri_or_path: str) -> str:
    """A URI for what may be a plain path (file://)."""
    return uri_or_path if "://" in uri_or_path else f"file://{uri_or_path}"


def read_uri(uri: str) -> bytes:
    """One file's or object's bytes."""
    path = local_path(uri)
    if path is not None:
        with open(path, "rb") as handle:
            return handle.read()
    from slipway.storage import open_store

    parent, name = uri.rsplit("/", 1)
    return open_store(parent).read_bytes(name)


def local_dir(uri: str) -> str:
    """A local directory holding what is below `uri`: the path itself for file://, else a copy pulled with
    slipway.storage, since TensorFlow (2.6 and later) reads neither s3:// nor az://."""
    path = local_path(uri)
    if path is not None:
        return path
    import os
    import tempfile

    from slipway.storage.puller import pull

    dest = os.path.join(tempfile.mkdtemp(prefix="slipway-pull-"), "model")
    pull(uri, dest)
    return dest
