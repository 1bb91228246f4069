"""The hub's one storage interface: an object store and a SQL catalog.

Services get a :class:`Storage` and work through :meth:`Storage.unit_of_work` (catalog
repositories in one transaction) and :attr:`Storage.objects` (verified S3 objects); nothing
outside this package imports ``minio`` or SQLAlchemy.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from fedpark.hub.storage.catalog import Catalog, UnitOfWork
from fedpark.hub.storage.objects import ObjectInfo, ObjectStore

__all__ = ["Catalog", "ObjectInfo", "ObjectStore", "Storage", "UnitOfWork"]


class Storage:
    def __init__(self, catalog: Catalog, objects: ObjectStore, buckets: dict[str, str]) -> None:
        self.catalog = catalog
        self.objects = objects
        self.buckets = buckets

    def start(self) -> None:
        """Check the object store, create buckets and migrate the catalog."""
        self.objects.check()
        self.objects.ensure_buckets()
        self.catalog.migrate()

    def unit_of_work(self, *, bookkeeping: bool = False) -> AbstractContextManager[UnitOfWork]:
        """Catalog repositories in one transaction (see :meth:`Catalog.unit_of_work`)."""
        return self.catalog.unit_of_work(bookkeeping=bookkeeping)

    def close(self) -> None:
        self.catalog.dispose()
