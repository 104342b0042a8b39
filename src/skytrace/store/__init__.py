"""History store: one repository interface (:class:`~skytrace.store.base.Store`), two back-ends.

SQLite is the default (embedded, zero set-up); PostgreSQL + PostGIS is used when given a ``postgresql://`` URL.
"""

from __future__ import annotations

from skytrace.store.base import Store, StoreError, open_store

__all__ = ["Store", "StoreError", "open_store"]
