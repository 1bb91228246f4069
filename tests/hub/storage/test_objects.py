"""The object store against the real embedded S3 server."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import pytest
from minio import Minio
from urllib3.exceptions import ProtocolError

from fedpark.hub.errors import (
    IntegrityError,
    ObjectNotFoundError,
    StorageAuthError,
    StorageUnavailableError,
)
from fedpark.hub.storage.embedded import EmbeddedS3
from fedpark.hub.storage.objects import ObjectRef, ObjectStore, RetryPolicy, Spool

pytestmark = pytest.mark.integration


def _raw(s3: EmbeddedS3) -> Minio:
    """A plain client, as an attacker or a broken disk would write."""
    return Minio(s3.endpoint, s3.credentials.access_key, s3.credentials.secret_key, secure=False)


def _bucket(store: ObjectStore) -> str:
    return store.buckets[0]


def test_bytes_round_trip_records_sha256_and_versions(object_store: ObjectStore) -> None:
    bucket = _bucket(object_store)
    first = object_store.put_bytes(bucket, "a/b.bin", b"first")
    second = object_store.put_bytes(bucket, "a/b.bin", b"second")
    assert first.sha256 == hashlib.sha256(b"first").hexdigest()
    assert first.size == 5
    assert first.version_id and second.version_id and first.version_id != second.version_id
    assert object_store.get_bytes(bucket, "a/b.bin") == b"second"
    old = object_store.get_bytes(
        bucket, "a/b.bin", version_id=first.version_id, sha256=first.sha256
    )
    assert old == b"first"


def test_spooled_upload_and_verified_copy_round_trip(
    object_store: ObjectStore, s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    """What the hub does with a model: spool the upload (past the 8 MiB kept in memory, and
    past one 16 MiB multipart part), then serve a verified copy from the scratch folder."""
    bucket = _bucket(object_store)
    payload = os.urandom(17 * 1024 * 1024 + 17)
    with Spool(tmp_path / "scratch") as spool:
        for at in range(0, len(payload), 65536):  # as a request body arrives
            spool.write(payload[at : at + 65536])
        assert spool.file._rolled  # type: ignore[attr-defined]  # on disk, not in memory
        stored = object_store.put_spool(bucket, "s.bin", spool)
    assert stored.sha256 == hashlib.sha256(payload).hexdigest() and stored.size == len(payload)

    ref = ObjectRef(stored.key, stored.sha256, stored.version_id)
    credentials = s3_server.credentials
    copy = ObjectStore(
        s3_server.endpoint,
        credentials.access_key,
        credentials.secret_key,
        scratch_dir=tmp_path / "scratch",
    ).fetch(bucket, ref)
    assert copy.parent == tmp_path / "scratch" and copy.read_bytes() == payload
    assert b"".join(object_store.iter_chunks(bucket, "s.bin")) == payload


def test_swapped_object_is_detected(object_store: ObjectStore, s3_server: EmbeddedS3) -> None:
    bucket = _bucket(object_store)
    info = object_store.put_bytes(bucket, "model.safetensors", b"genuine weights")
    # Replace the bytes but forge the metadata to the genuine digest.
    forged = b"poisoned weights"
    _raw(s3_server).put_object(
        bucket,
        "model.safetensors",
        io.BytesIO(forged),
        len(forged),
        metadata={"sha256": info.sha256},
    )
    with pytest.raises(IntegrityError, match="corrupted or was replaced"):
        object_store.get_bytes(bucket, "model.safetensors")
    # Forge a consistent object: the digest recorded by the caller still catches it.
    object_store.put_bytes(bucket, "model.safetensors", forged)
    with pytest.raises(IntegrityError):
        object_store.get_bytes(bucket, "model.safetensors", sha256=info.sha256)
    with pytest.raises(IntegrityError):
        b"".join(object_store.iter_chunks(bucket, "model.safetensors", sha256=info.sha256))


def test_corrupt_download_never_reaches_the_target(
    object_store: ObjectStore, s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    bucket = _bucket(object_store)
    info = object_store.put_bytes(bucket, "x", b"good")
    _raw(s3_server).put_object(
        bucket, "x", io.BytesIO(b"evil"), 4, metadata={"sha256": info.sha256}
    )
    target = tmp_path / "x"
    with pytest.raises(IntegrityError):
        object_store.get_file(bucket, "x", target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    scratch = ObjectStore(
        s3_server.endpoint,
        s3_server.credentials.access_key,
        s3_server.credentials.secret_key,
        scratch_dir=tmp_path / "scratch",
    )
    with pytest.raises(IntegrityError):  # what the hub serves downloads from
        scratch.fetch(bucket, ObjectRef("x", info.sha256, None))  # the swapped latest
    assert list((tmp_path / "scratch").iterdir()) == []


def test_object_without_checksum_is_refused(
    object_store: ObjectStore, s3_server: EmbeddedS3
) -> None:
    bucket = _bucket(object_store)
    _raw(s3_server).put_object(bucket, "bare", io.BytesIO(b"data"), 4)
    with pytest.raises(IntegrityError, match="no recorded sha256"):
        object_store.get_bytes(bucket, "bare")


def test_missing_object(object_store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError):
        object_store.get_bytes(_bucket(object_store), "nope")


def test_wrong_secret_gives_a_clear_error_without_the_secret(s3_server: EmbeddedS3) -> None:
    store = ObjectStore(s3_server.endpoint, s3_server.credentials.access_key, "not-the-secret")
    with pytest.raises(StorageAuthError) as caught:
        store.check()
    message = str(caught.value)
    assert "rejected the credentials" in message
    assert s3_server.credentials.access_key in message
    assert "not-the-secret" not in message and "\n" not in message


def test_unreachable_storage_gives_a_clear_error() -> None:
    store = ObjectStore("127.0.0.1:9", "key", "secret", retry=RetryPolicy(attempts=2, base_delay=0))
    with pytest.raises(StorageUnavailableError, match=r"cannot reach object storage at .*:9"):
        store.check()


def test_transient_errors_are_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retried after the policy's delays (recorded, not timed), and the policy's delays grow
    exponentially up to their cap, with jitter below the envelope."""
    slept: list[float] = []
    monkeypatch.setattr("fedpark.hub.storage.objects.time.sleep", slept.append)

    class Envelope(RetryPolicy):
        """The jitter's upper edge, so the store's waits are known exactly (a store that
        never slept, or slept a constant, would not give them)."""

        def delay(self, attempt: int) -> float:
            return min(self.max_delay, self.base_delay * 2**attempt)

    store = ObjectStore("127.0.0.1:9", "k", "s", retry=Envelope(attempts=4, base_delay=0.01))
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ProtocolError("connection reset by peer")
        return "ok"

    assert store._call(flaky) == "ok"
    assert len(calls) == 3 and len(slept) == 2  # two waits between three attempts
    assert slept == [0.01, 0.02]

    def always_down() -> str:
        raise ProtocolError("connection reset by peer")

    slept.clear()
    with pytest.raises(StorageUnavailableError):
        store._call(always_down)
    assert slept == [0.01, 0.02, 0.04]  # four attempts, three waits, then the clear error


def test_the_retry_delay_grows_exponentially_to_its_cap() -> None:
    policy = RetryPolicy(attempts=8, base_delay=0.2, max_delay=5.0)
    for attempt in range(8):
        envelope = min(5.0, 0.2 * 2**attempt)
        samples = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= envelope for d in samples)
        assert max(samples) > 0.9 * envelope  # full jitter: P(not) = 0.9**200, never


def test_a_damaged_volume_is_damage_not_an_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes changed on the storage server's disk: SeaweedFS answers InternalError for the
    object (after its own retries) while it still lists it (a storage server of its own,
    whose volume this test damages). That is said as damage at once,
    not retried five times as an outage (68 s of "retry later" before)."""
    with EmbeddedS3(tmp_path / "s3") as s3:
        bucket = "damaged-volume"
        store = ObjectStore(
            s3.endpoint, s3.credentials.access_key, s3.credentials.secret_key, buckets=(bucket,)
        )
        store.ensure_buckets()
        body = b"FEDPARK-DAMAGE-MARK" + os.urandom(60_000)  # random: stored uncompressed
        ref = store.put_bytes(bucket, "document.json", body)
        (volume,) = [p for p in (tmp_path / "s3").rglob(f"{bucket}_*.dat")]
        data = bytearray(volume.read_bytes())
        at = data.find(b"FEDPARK-DAMAGE-MARK")
        assert at >= 0, "the object's bytes are not in its volume file"
        data[at + 100 : at + 200] = bytes(b ^ 0xFF for b in data[at + 100 : at + 200])
        volume.write_bytes(bytes(data))
        with caplog.at_level("WARNING"), pytest.raises(IntegrityError) as damaged:
            store.get_bytes(bucket, "document.json", sha256=ref.sha256)
    assert "is listed but the storage server cannot read its bytes back" in str(damaged.value)
    # retried once (one InternalError may be a passing fault), not five times as an outage
    assert caplog.text.count("transient storage error") == 1, caplog.text
