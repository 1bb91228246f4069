"""Object storage over the plain S3 API (``minio`` SDK).

Every object is written with its sha256 in the object's metadata and the caller gets it back in
an :class:`ObjectInfo` to record in the catalog. Every read hashes the bytes and compares them
with the sha256 the caller recorded (or, failing that, the one in the metadata): a corrupted or
swapped object raises :class:`IntegrityError`, it is never returned silently.

Only the plain S3 API is used, so MinIO, SeaweedFS, Ceph RGW and AWS S3 all serve.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.versioningconfig import VersioningConfig
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from fedpark.hub.errors import (
    FedparkError,
    IntegrityError,
    ObjectNotFoundError,
    StorageAuthError,
    StorageError,
    StorageUnavailableError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

SHA256_META = "x-amz-meta-sha256"
_CHUNK = 1024 * 1024
_PART_SIZE = 8 * 1024 * 1024  # S3 allows 5 MiB to 5 GiB; each part is held in memory once
_SPOOL_IN_MEMORY = 8 * 1024 * 1024

# S3 error codes that say "try again later" rather than "you asked for something wrong".
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed"}
)
_AUTH_CODES = frozenset(
    {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken"}
)
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "NoSuchObject"})


@dataclass(frozen=True)
class ObjectInfo:
    """Where an object was written and what its bytes hash to; record it in the catalog."""

    bucket: str
    key: str
    version_id: str | None
    sha256: str
    size: int


@dataclass(frozen=True)
class ObjectRef:
    """A recorded object as the catalog pins it: its key, the sha256 its bytes must hash
    to, and the version written (a later write to the same key cannot stand in for it)."""

    key: str
    sha256: str | None
    version_id: str | None


class Spool:
    """An upload's bytes on their way to storage: kept in memory up to 8 MiB, then in a
    temporary file, hashed as they arrive; so memory stays bounded whatever the size, the
    sha256 goes into the object's metadata, and a failed upload can be retried."""

    def __init__(self, folder: Path | None = None) -> None:
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        where = str(folder) if folder is not None else None
        self.file = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY, dir=where)  # noqa: SIM115
        self._hasher = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self.file.write(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._hasher.hexdigest()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient storage errors."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311


class ObjectStore:
    """Buckets, verified put/get and presigned downloads on one S3 endpoint.

    Parameters
    ----------
    endpoint
        ``host:port`` of the S3 server, without a scheme.
    access_key, secret_key
        Credentials (SigV4). The secret is never logged or put in an error message.
    secure
        Use HTTPS.
    buckets
        Bucket names created (with versioning on) by :meth:`ensure_buckets`.
    region
        Region name for SigV4; S3-compatible servers accept any.
    retry
        Backoff for transient errors (connection resets, 5xx, ``SlowDown``).
    timeout
        Connect and read timeout in seconds for one HTTP request.
    scratch_dir
        Where uploads spool and verified downloads wait to be served (disk, not a tmpfs:
        models are up to gigabytes); the system's temporary folder when None.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        secure: bool = False,
        buckets: tuple[str, ...] = (),
        region: str | None = "us-east-1",
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        scratch_dir: Path | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.scratch_dir = scratch_dir
        self.secure = secure
        self.buckets = buckets
        self._access_key = access_key
        self._retry = retry or RetryPolicy()
        # Told of every failure but a missing object (often the expected answer): metrics.
        self.on_error: Callable[[FedparkError], None] | None = None
        # Retries are ours (with backoff and a clear final error), so urllib3 does none.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
            retries=False,
            maxsize=16,
        )
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    # -- buckets and health ---------------------------------------------------------------

    def ensure_buckets(self) -> None:
        """Create the configured buckets if missing and turn versioning on."""
        for bucket in self.buckets:
            if not self._call(lambda b=bucket: self._client.bucket_exists(b)):  # type: ignore[misc]
                try:
                    self._call(lambda b=bucket: self._client.make_bucket(b))  # type: ignore[misc]
                except StorageError as exc:  # another hub replica won the race
                    if "BucketAlreadyOwnedByYou" not in str(exc):
                        raise
            self._call(
                lambda b=bucket: self._client.set_bucket_versioning(  # type: ignore[misc]
                    b, VersioningConfig(ENABLED)
                )
            )
            log.info("bucket %s ready (versioning on)", bucket)

    def check(self) -> None:
        """Raise a StorageError unless the store answers an authenticated request."""
        self._call(lambda: self._client.list_buckets(), attempts=1)

    # -- writes ---------------------------------------------------------------------------

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        digest = hashlib.sha256(data).hexdigest()
        result = self._call(
            lambda: self._client.put_object(
                bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata={"sha256": digest},
            )
        )
        return ObjectInfo(bucket, key, result.version_id, digest, len(data))

    def put_spool(
        self,
        bucket: str,
        key: str,
        spool: Spool,
        content_type: str = "application/octet-stream",
    ) -> ObjectInfo:
        """Upload spooled bytes (multipart above 16 MiB), their sha256 in the metadata."""
        digest, size = spool.sha256, spool.size

        def upload() -> ObjectInfo:
            spool.file.seek(0)
            result = self._client.put_object(
                bucket,
                key,
                cast(BinaryIO, spool.file),
                size,
                content_type=content_type,
                metadata={"sha256": digest},
                part_size=_PART_SIZE,
            )
            return ObjectInfo(bucket, key, result.version_id, digest, size)

        return self._call(upload)

    def spool(self) -> Spool:
        """A new spool for an upload's bytes, in the scratch folder."""
        return Spool(self.scratch_dir)

    # -- reads ----------------------------------------------------------------------------

    def read(self, bucket: str, ref: ObjectRef) -> bytes:
        """A recorded object's bytes (small ones: documents, manifests), verified."""
        return self.get_bytes(bucket, ref.key, sha256=ref.sha256, version_id=ref.version_id)

    def fetch(self, bucket: str, ref: ObjectRef) -> Path:
        """A verified copy of a recorded object in the scratch folder, for serving it in
        bounded memory; the caller removes it. Verified before its first byte is served:
        a damaged object is an error, never a download that breaks off."""
        if self.scratch_dir is not None:
            self.scratch_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.scratch_dir, prefix="download-")
        os.close(fd)
        path = Path(name)
        try:
            self.get_file(bucket, ref.key, path, sha256=ref.sha256, version_id=ref.version_id)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def get_bytes(
        self,
        bucket: str,
        key: str,
        *,
        sha256: str | None = None,
        version_id: str | None = None,
    ) -> bytes:
        """Read a whole object and verify it against ``sha256`` (or its recorded metadata)."""

        def read() -> tuple[bytes, str | None]:
            response = self._client.get_object(bucket, key, version_id=version_id)
            try:
                return response.read(), response.headers.get(SHA256_META)
            finally:
                response.close()
                response.release_conn()

        data, recorded = self._read(bucket, key, version_id, read)
        self._verify(bucket, key, hashlib.sha256(data).hexdigest(), sha256 or recorded)
        return data

    def get_file(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        sha256: str | None = None,
        version_id: str | None = None,
    ) -> ObjectInfo:
        """Download to ``path`` atomically; a mismatching download never reaches ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".part-", delete=False) as tmp:
            tmp_path = Path(tmp.name)
        try:
            info = self._read(
                bucket, key, version_id, lambda: self._download(bucket, key, tmp_path, version_id)
            )
            expected = sha256 or self._recorded_sha(bucket, key, version_id)
            self._verify(bucket, key, info.sha256, expected)
            tmp_path.replace(path)
            return info
        finally:
            tmp_path.unlink(missing_ok=True)

    def iter_chunks(
        self,
        bucket: str,
        key: str,
        *,
        sha256: str | None = None,
        version_id: str | None = None,
    ) -> Iterator[bytes]:
        """Yield an object's bytes; raises IntegrityError at the end if they do not match.

        Consumers must not act on the data before the iterator is exhausted.
        """

        def get() -> BaseHTTPResponse:
            return self._client.get_object(bucket, key, version_id=version_id)

        response = self._read(bucket, key, version_id, get)
        expected = sha256 or response.headers.get(SHA256_META)
        hasher = hashlib.sha256()
        try:
            for chunk in response.stream(_CHUNK):
                hasher.update(chunk)
                yield chunk
        except (Urllib3HTTPError, OSError) as exc:
            raise self._reported(
                StorageUnavailableError(
                    f"object storage at {self.url} dropped the download of {bucket}/{key}: {exc}"
                )
            ) from exc
        finally:
            response.close()
            response.release_conn()
        self._verify(bucket, key, hasher.hexdigest(), expected)

    def stat(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        st = self._call(lambda: self._client.stat_object(bucket, key, version_id=version_id))
        return ObjectInfo(
            bucket,
            key,
            st.version_id,
            (st.metadata or {}).get(SHA256_META, ""),
            st.size or 0,
        )

    def delete_quietly(self, bucket: str, key: str) -> None:
        """Remove an object nothing refers to (best effort: a failure is only logged)."""
        try:
            self._call(lambda: self._client.remove_object(bucket, key), attempts=1)
        except StorageError as exc:
            log.warning("could not remove the unreferenced %s/%s: %s", bucket, key, exc)

    # -- internals ------------------------------------------------------------------------

    def _download(self, bucket: str, key: str, dest: Path, version_id: str | None) -> ObjectInfo:
        response = self._client.get_object(bucket, key, version_id=version_id)
        hasher = hashlib.sha256()
        size = 0
        try:
            with dest.open("wb") as out:
                for chunk in response.stream(_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            return ObjectInfo(
                bucket,
                key,
                response.headers.get("x-amz-version-id"),
                hasher.hexdigest(),
                size,
            )
        finally:
            response.close()
            response.release_conn()

    def _recorded_sha(self, bucket: str, key: str, version_id: str | None) -> str | None:
        return self.stat(bucket, key, version_id).sha256 or None

    def _reported(self, exc: StorageError) -> StorageError:
        if self.on_error is not None and not isinstance(exc, ObjectNotFoundError):
            self.on_error(exc)
        return exc

    def _verify(self, bucket: str, key: str, actual: str, expected: str | None) -> None:
        try:
            _verify(bucket, key, actual, expected)
        except IntegrityError as exc:
            raise self._reported(exc) from None

    def _read(self, bucket: str, key: str, version_id: str | None, fn: Callable[[], T]) -> T:
        """A read, retried as any call, except that a server failing twice on an object it
        still lists has damaged bytes, not a passing fault: a corrupted SeaweedFS volume
        answers InternalError after its own retries (~13 s each here), and five of them
        were 68 s of "retry later". One InternalError alone is retried: AWS, MinIO and Ceph
        send it for passing faults too."""
        faults = 0

        def guarded() -> T:
            nonlocal faults
            try:
                return fn()
            except S3Error as exc:
                if exc.code == "InternalError":
                    faults += 1
                    if faults >= 2 and self._listed(bucket, key, version_id):
                        raise IntegrityError(
                            f"{bucket}/{key} is listed but the storage server cannot read its "
                            "bytes back (InternalError twice)"
                        ) from None
                raise

        return self._call(guarded)

    def _listed(self, bucket: str, key: str, version_id: str | None) -> bool:
        """Whether the server still lists the object (its metadata answers)."""
        try:
            self._client.stat_object(bucket, key, version_id=version_id)
        except (S3Error, ServerError, InvalidResponseError, Urllib3HTTPError, OSError):
            return False
        return True

    def _call(self, fn: Callable[[], T], attempts: int | None = None) -> T:
        """Run one storage operation, retrying transient failures with backoff."""
        try:
            return self._attempt(fn, attempts)
        except StorageError as exc:
            raise self._reported(exc) from None

    def _attempt(self, fn: Callable[[], T], attempts: int | None) -> T:
        attempts = attempts or self._retry.attempts
        for attempt in range(attempts):
            try:
                return fn()
            except S3Error as exc:
                if exc.code in _AUTH_CODES:
                    raise StorageAuthError(
                        f"object storage at {self.url} rejected the credentials for access key "
                        f"{self._access_key!r} ({exc.code})"
                    ) from None
                if exc.code in _MISSING_CODES:
                    raise ObjectNotFoundError(
                        f"{exc.bucket_name or ''}/{exc.object_name or ''}: {exc.code}"
                    ) from None
                if exc.code not in _TRANSIENT_CODES or attempt == attempts - 1:
                    raise StorageError(
                        f"object storage at {self.url}: {exc.code}: {exc.message}"
                    ) from None
            except (ServerError, InvalidResponseError) as exc:
                if attempt == attempts - 1:
                    raise StorageError(f"object storage at {self.url} failed: {exc}") from None
            except (Urllib3HTTPError, ConnectionError, TimeoutError) as exc:
                if attempt == attempts - 1:
                    reason = getattr(exc, "reason", None) or exc
                    raise StorageUnavailableError(
                        f"cannot reach object storage at {self.url}: {_short(reason)}"
                    ) from None
            delay = self._retry.delay(attempt)
            log.warning("transient storage error, retrying in %.2fs", delay)
            time.sleep(delay)
        raise AssertionError("unreachable")


def _verify(bucket: str, key: str, actual: str, expected: str | None) -> None:
    if not expected:
        raise IntegrityError(f"{bucket}/{key} has no recorded sha256: refusing unverified bytes")
    if actual != expected:
        raise IntegrityError(
            f"{bucket}/{key} is corrupted or was replaced: sha256 {actual[:16]}… "
            f"does not match the recorded {expected[:16]}…"
        )


def _short(reason: object) -> str:
    """The useful tail of urllib3's nested reasons ("Connection refused", not a repr chain)."""
    text = str(reason)
    for marker in ("[Errno", "timed out", "Name or service not known"):
        at = text.find(marker)
        if at >= 0:
            return text[at:].rstrip(")'\"")
    return text
