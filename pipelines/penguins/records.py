"""TFRecord files, the examples' on-disk format: written by ExampleGen, read by StatisticsGen and the
InfraValidator (TF Transform, the Trainer and TFMA read them with TensorFlow's own reader).

Shipped into the steps that call them (see components/base.py): imports inside, nothing module-level."""


def tfrecord(payload: bytes) -> bytes:
    """One TFRecord: length, masked CRC-32C of the length, payload, masked CRC-32C of the payload."""
    import struct

    import google_crc32c

    def masked_crc(data: bytes) -> bytes:
        crc = google_crc32c.value(data)
        return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

    length = struct.pack("<Q", len(payload))
    return length + masked_crc(length) + payload + masked_crc(payload)


def read_tfrecords(path: str) -> list[bytes]:
    """The payloads of a TFRecord file (the checksums are not verified: the file is the pipeline's own)."""
    with open(path, "rb") as handle:
        return parse_tfrecords(handle.read())


def parse_tfrecords(data: bytes) -> list[bytes]:
    """The payloads of TFRecord bytes; a truncated record is an error."""
    import struct

    records, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        if offset + 16 + length > len(data):
            raise ValueError(f"a truncated TFRecord at byte {offset}")
        records.append(data[offset + 12 : offset + 12 + length])
        offset += 12 + length + 4
    return records


def read_split(examples_path: str, split: str) -> list[bytes]:
    """Every serialized example of one split (`<examples>/Split-<split>/*`), in file-name order."""
    import os

    directory = os.path.join(examples_path, f"Split-{split}")
    return [r for n in sorted(os.listdir(directory)) for r in read_tfrecords(os.path.join(directory, n))]
