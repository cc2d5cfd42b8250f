"""The Python worker daemon Spark starts (``spark.python.daemon.module``): PySpark's own daemon,
with a CPython 3.10/3.11 regression worked around.

Every Spark task's Python worker calls ``importlib.invalidate_caches()`` (pyspark/worker.py), and
on CPython 3.10 and 3.11 that makes each ``zipimporter`` on ``sys.path`` re-read its archive's
whole directory there and then (python/cpython#103200; 3.12 made the re-read lazy). PySpark puts
its pyspark.zip and py4j zip on its workers' path, so every task re-read some 2.4 MB of zip
directory: ~0.1 CPU-second per task, the largest fixed cost of a small task here. Workers forked
from this daemon re-read an archive's directory only when the archive changed (its size or
modification time), which keeps what invalidation is for.
"""

from __future__ import annotations

import os
import sys
import zipimport
from typing import Any

_invalidate_caches = zipimport.zipimporter.invalidate_caches
# Archive path -> (mtime ns, size) when its directory was last read.
_directory_read: dict[str, tuple[int, int]] = {}


def _archive_stamp(archive: str) -> tuple[int, int] | None:
    try:
        status = os.stat(archive)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def invalidate_if_changed(importer: Any) -> None:
    """``zipimporter.invalidate_caches``, skipped while the archive is unchanged since its last read."""
    archive = str(importer.archive)
    stamp = _archive_stamp(archive)
    if stamp is not None and _directory_read.get(archive) == stamp:
        return
    _invalidate_caches(importer)
    if stamp is not None:
        _directory_read[archive] = stamp


def needs_workaround(version: tuple[int, int]) -> bool:
    return (3, 10) <= version < (3, 12)


def main() -> None:
    if needs_workaround(sys.version_info[:2]):
        zipimport.zipimporter.invalidate_caches = invalidate_if_changed  # type: ignore[method-assign,assignment]
    from pyspark import daemon

    daemon.manager()


if __name__ == "__main__":
    main()
