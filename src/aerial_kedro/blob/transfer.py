"""Upload, download and list blobs in parallel with azure-storage-blob (the seed's AzCopy step).

Blob contents and names are not trusted input. Downloads skip folder-marker blobs (hadoop-azure's
``hdi_isfolder`` and ``name/`` blobs), never write outside the destination, and write each file
to ``<name>.part`` first, renamed only when complete: an interrupted transfer leaves no truncated
file under a real name. Uploads skip symbolic links unless asked to follow them (a link in a
folder, e.g. to ``/etc/passwd``, would otherwise publish whatever it points at).
"""

from __future__ import annotations

import mimetypes
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings

from aerial_kedro.blob.client import BlobError, explain
from aerial_kedro.blob.urls import is_container_name

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """``CONTAINER[/PREFIX]`` as written on the command line."""

    container: str
    prefix: str

    @classmethod
    def parse(cls, text: str) -> Target:
        container, _, prefix = text.strip("/").partition("/")
        if not is_container_name(container):
            raise BlobError(
                f"'{text}': '{container}' is not a container name "
                "(3-63 lowercase letters, digits or single hyphens); write CONTAINER/PREFIX"
            )
        return cls(container, prefix.strip("/"))

    def blob_name(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def __str__(self) -> str:
        return f"{self.container}/{self.prefix}" if self.prefix else self.container


@dataclass(frozen=True)
class TransferReport:
    files: int
    bytes: int
    seconds: float
    skipped: tuple[str, ...] = ()  # symbolic links not uploaded, folder markers not downloaded

    def __str__(self) -> str:
        rate = self.bytes / 1e6 / max(self.seconds, 1e-9)
        return f"{self.files} files, {self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s ({rate:.1f} MB/s)"


class Progress:
    """Files and bytes done so far, on one rewritten line (TTY) or a line every 10 % (logs)."""

    def __init__(self, verb: str, total_files: int, total_bytes: int, stream: TextIO | None = None) -> None:
        self.verb, self.total_files, self.total_bytes = verb, total_files, total_bytes
        self.stream = stream or sys.stderr
        self.files = self.bytes = 0
        self._next_tenth = 1
        self._lock = threading.Lock()

    def advance(self, size: int) -> None:
        with self._lock:
            self.files += 1
            self.bytes += size
            self._show()

    def _show(self) -> None:
        line = (
            f"{self.verb} {self.files}/{self.total_files} files, "
            f"{self.bytes / 1e6:.1f}/{self.total_bytes / 1e6:.1f} MB"
        )
        if self.stream.isatty():
            end = "\n" if self.files == self.total_files else ""
            self.stream.write(f"\r{line}{end}")
        elif self.files == self.total_files or self.files * 10 >= self._next_tenth * self.total_files:
            self._next_tenth = self.files * 10 // max(self.total_files, 1) + 1
            self.stream.write(f"{line}\n")
        self.stream.flush()


def local_files(source: Path, *, follow_symlinks: bool = False) -> tuple[list[tuple[Path, str]], list[Path]]:
    """(path, blob-relative name) of ``source`` itself (a file) or of every file under it, and
    the symbolic links skipped on the way (all of them unless ``follow_symlinks``).

    ``source`` itself is taken as named, even when it is a link: the user typed it. Links found
    inside are what may point anywhere. Followed folder links are walked once each (no loops).
    """
    if source.is_file():
        return [(source, source.name)], []
    if not source.is_dir():
        raise BlobError(f"'{source}' is neither a file nor a folder")
    files: list[tuple[Path, str]] = []
    skipped: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, names in os.walk(source, followlinks=follow_symlinks):
        here = Path(folder)
        real = os.path.realpath(here)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        for name in sorted([*dirs, *names]):
            path = here / name
            if path.is_symlink() and not follow_symlinks:
                skipped.append(path)
                if name in dirs:
                    dirs.remove(name)
            elif name in names and path.is_file():
                files.append((path, path.relative_to(source).as_posix()))
        dirs.sort()
    return sorted(files, key=lambda item: item[1]), sorted(skipped)


def upload(
    service: BlobServiceClient,
    source: Path,
    target: Target,
    *,
    workers: int = 8,
    overwrite: bool = True,
    create_container: bool = True,
    follow_symlinks: bool = False,
    progress_stream: TextIO | None = None,
) -> TransferReport:
    """Upload a file, or a folder's files keeping their relative paths, under ``target``.

    Symbolic links inside the folder are skipped (listed in the report) unless ``follow_symlinks``.
    """
    files, skipped = local_files(source, follow_symlinks=follow_symlinks)
    container = _container(service, target.container, create=create_container)
    progress = Progress("uploaded", len(files), sum(path.stat().st_size for path, _ in files), progress_stream)
    per_file_concurrency = workers if len(files) == 1 else 1

    def send(item: tuple[Path, str]) -> None:
        path, relative = item
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as data:
            container.upload_blob(
                target.blob_name(relative), data, overwrite=overwrite,
                content_settings=ContentSettings(content_type=content_type),
                max_concurrency=per_file_concurrency,
            )
        progress.advance(path.stat().st_size)

    started = time.perf_counter()
    _run_parallel(send, files, workers, endpoint=container.url, container=target.container)
    return TransferReport(progress.files, progress.bytes, time.perf_counter() - started,
                          tuple(str(path) for path in skipped))


def download(
    service: BlobServiceClient,
    target: Target,
    destination: Path,
    *,
    workers: int = 8,
    progress_stream: TextIO | None = None,
) -> TransferReport:
    """Download every blob under ``target`` into ``destination``, paths relative to the prefix.

    Folder markers are skipped; each file is written to ``<file>.part`` and renamed when complete.
    """
    container = _container(service, target.container, create=False)
    entries = list(_list_entries(container, target))
    markers = folder_markers(entries)
    blobs = [(name, size) for name, size, _ in entries if name not in markers]
    progress = Progress("downloaded", len(blobs), sum(size for _, size in blobs), progress_stream)
    root = destination.resolve()
    if root.exists() and not root.is_dir():
        raise BlobError(f"Destination '{destination}' exists and is not a folder")

    def fetch(item: tuple[str, int]) -> None:
        name, size = item
        relative = name[len(target.prefix):].lstrip("/") if target.prefix else name
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or path == root:
            raise BlobError(f"Blob '{name}' would be written outside {root}")
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.part")
        try:
            with partial.open("wb") as out:
                container.download_blob(name).readinto(out)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        progress.advance(size)

    started = time.perf_counter()
    _run_parallel(fetch, blobs, workers, endpoint=container.url, container=target.container)
    return TransferReport(progress.files, progress.bytes, time.perf_counter() - started,
                          tuple(sorted(markers)))


def folder_markers(entries: list[tuple[str, int, dict[str, str]]]) -> set[str]:
    """Names of the blobs that stand for folders, not files.

    hadoop-azure (wasb) writes a 0-byte blob with metadata ``hdi_isfolder=true`` for every folder
    it creates (ADLS Gen2 lists its directories the same way); other tools end the name with
    ``/``. A 0-byte blob whose name is also a folder of other blobs cannot be written as a file.
    """
    folders = {name.rsplit("/", 1)[0] for name, _, _ in entries if "/" in name}
    folders = {parent for folder in folders for parent in _parents(folder)}
    return {
        name for name, size, metadata in entries
        if name.endswith("/")
        or str(metadata.get("hdi_isfolder", "")).lower() == "true"
        or (size == 0 and name in folders)
    }


def _parents(folder: str) -> list[str]:
    parts = folder.split("/")
    return ["/".join(parts[: index + 1]) for index in range(len(parts))]


def _list_entries(container: ContainerClient, target: Target) -> Iterator[tuple[str, int, dict[str, str]]]:
    prefix = f"{target.prefix}/" if target.prefix else None
    try:
        for blob in container.list_blobs(name_starts_with=prefix, include=["metadata"]):
            yield blob.name, int(blob.size or 0), dict(blob.metadata or {})
    except AzureError as error:
        raise BlobError(explain(error, endpoint=container.url, container=target.container)) from None


def list_blobs(service: BlobServiceClient, target: Target) -> Iterator[tuple[str, int]]:
    """(name, size) of every blob under ``target`` (the container must exist)."""
    container = _container(service, target.container, create=False)
    prefix = f"{target.prefix}/" if target.prefix else None
    try:
        for blob in container.list_blobs(name_starts_with=prefix):
            yield blob.name, int(blob.size or 0)
    except AzureError as error:
        raise BlobError(explain(error, endpoint=container.url, container=target.container)) from None


def create_container(service: BlobServiceClient, name: str) -> bool:
    """Create container ``name``; False when it already existed."""
    client = service.get_container_client(name)
    try:
        client.create_container()
    except ResourceExistsError:
        return False
    except AzureError as error:
        raise BlobError(explain(error, endpoint=client.url, container=name)) from None
    return True


def _container(service: BlobServiceClient, name: str, *, create: bool) -> ContainerClient:
    """The container's client, after one round trip that proves the endpoint, key and container."""
    if create:
        create_container(service, name)
    client = service.get_container_client(name)
    try:
        client.get_container_properties()
    except AzureError as error:
        raise BlobError(explain(error, endpoint=client.url, container=name)) from None
    return client


def _run_parallel(action: Callable[[T], None], items: list[T], workers: int, *, endpoint: str, container: str) -> None:
    """Run ``action`` on every item; the first failure cancels the rest and is raised as one line."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(action, item) for item in items]
        try:
            for future in futures:
                future.result()
        except AzureError as error:
            _cancel(futures)
            raise BlobError(explain(error, endpoint=endpoint, container=container)) from None
        except OSError as error:  # the local side: disk full, permission, a file where a folder goes
            _cancel(futures)
            where = f" ({error.filename})" if error.filename else ""
            raise BlobError(f"{error.strerror or type(error).__name__}{where}") from None
        except BaseException:
            _cancel(futures)
            raise


def _cancel(futures: list) -> None:
    for future in futures:
        future.cancel()
