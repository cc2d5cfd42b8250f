"""Make sure the default tile source (data/01_raw/eurosat) has tiles.

Order: tiles already there -> keep them; ../shared/data/eurosat-sample (or the full eurosat with
``--full``) beside the project -> link it; otherwise download the official EuroSAT RGB archive,
verify its checksum and extract it. Usage::

    python -m aerial_kedro.data_setup [--full] [--url URL --checksum sha256:HEX|md5:HEX]

The archive is untrusted input until its checksum matches: the download stops at
``max_download_bytes`` (Content-Length is checked first, then the bytes actually received), and
the zip is refused before extraction when its members would unpack to more than
``max_extracted_bytes`` or number more than ``MAX_MEMBERS`` (zipfile never writes more than a
member's declared size, so the declared sizes bound the disk used).

Checksum: the EuroSAT authors, torchvision and torchgeo publish only an MD5 for EuroSAT.zip, so
that is the default pin. MD5's weakness is collisions crafted by whoever makes the file; matching
an already published archive needs a second preimage, which is still out of reach. Pass
``--checksum sha256:HEX`` (preferred, e.g. for a mirror) whenever a SHA-256 is at hand.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from aerial_kedro.tile_files import is_tile_name

logger = logging.getLogger(__name__)

EUROSAT_URL = os.environ.get("EUROSAT_URL", "https://madm.dfki.de/files/sentinel/EuroSAT.zip")
# The checksum the EuroSAT authors' archive is published with (torchvision / torchgeo pin the same).
EUROSAT_CHECKSUM = os.environ.get("EUROSAT_CHECKSUM", "md5:c8fa014336c82ac7804f0398fcb19387")
# EuroSAT.zip (RGB) is about 94 MB and unpacks to about 100 MB in 27,000 files: room for 2-5x.
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
MAX_EXTRACTED_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 100_000


class ChecksumError(ValueError):
    """A downloaded archive whose checksum differs from the expected one."""


class ArchiveTooLargeError(ValueError):
    """A download or an archive's contents over the size caps; the message names the cap."""


def has_tiles(folder: Path) -> bool:
    """True when ``folder`` holds at least one class sub-folder with an image file."""
    if not folder.is_dir():
        return False
    return any(
        child.is_file() and is_tile_name(child.name)
        for class_dir in folder.iterdir()
        if class_dir.is_dir()
        for child in class_dir.iterdir()
    )


def file_checksum(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, checksum: str) -> None:
    """``checksum`` is ``sha256:<hex>`` or ``md5:<hex>``; raise ``ChecksumError`` on mismatch."""
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in ("sha256", "md5") or not expected:
        raise ValueError(f"checksum '{checksum}' must look like sha256:<hex> or md5:<hex>")
    actual = file_checksum(path, algorithm)
    if actual != expected.lower():
        raise ChecksumError(f"{path.name}: {algorithm} {actual} != expected {expected}")


def download(url: str, target: Path, timeout: float = 60.0, max_bytes: int = MAX_DOWNLOAD_BYTES) -> Path:
    """Stream ``url`` into ``target``; stop with ``ArchiveTooLargeError`` past ``max_bytes``."""
    logger.info("Downloading %s", url)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise ArchiveTooLargeError(f"{url}: {int(declared)} bytes announced, over the {max_bytes}-byte download cap")
        received = 0
        with target.open("wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                received += len(block)
                if received > max_bytes:
                    raise ArchiveTooLargeError(f"{url}: more than the {max_bytes}-byte download cap")
                out.write(block)
    return target


def check_archive(bundle: zipfile.ZipFile, max_bytes: int = MAX_EXTRACTED_BYTES, max_members: int = MAX_MEMBERS) -> None:
    """Refuse a zip that would unpack to more than ``max_bytes`` or more than ``max_members`` files."""
    members = bundle.infolist()
    if len(members) > max_members:
        raise ArchiveTooLargeError(f"{bundle.filename}: {len(members)} members, over the cap of {max_members}")
    total = sum(member.file_size for member in members)
    if total > max_bytes:
        raise ArchiveTooLargeError(
            f"{bundle.filename}: unpacks to {total} bytes, over the {max_bytes}-byte extraction cap"
        )


def find_class_root(folder: Path) -> Path:
    """The folder whose sub-folders are the classes (EuroSAT.zip nests them under ``2750/``)."""
    for candidate in [folder, *sorted(path for path in folder.rglob("*") if path.is_dir())]:
        if has_tiles(candidate):
            return candidate
    raise ValueError(f"No class folders with image tiles inside {folder}")


def download_eurosat(
    destination: Path,
    url: str = EUROSAT_URL,
    checksum: str = EUROSAT_CHECKSUM,
    max_download_bytes: int = MAX_DOWNLOAD_BYTES,
    max_extracted_bytes: int = MAX_EXTRACTED_BYTES,
) -> Path:
    """Download, verify and extract the archive so that ``destination/<Class>/<tile>`` exists."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if checksum.startswith("md5:") and checksum != EUROSAT_CHECKSUM:
        logger.warning("Verifying %s with MD5: pin a sha256:<hex> checksum when one is published", url)
    with tempfile.TemporaryDirectory(dir=destination.parent) as scratch:
        archive = download(url, Path(scratch) / "eurosat.zip", max_bytes=max_download_bytes)
        verify_checksum(archive, checksum)
        extracted = Path(scratch) / "extracted"
        with zipfile.ZipFile(archive) as bundle:
            check_archive(bundle, max_extracted_bytes)
            bundle.extractall(extracted)
        root = find_class_root(extracted)
        if destination.is_symlink() or destination.exists():
            _remove(destination)
        shutil.move(str(root), destination)
    logger.info("EuroSAT tiles in %s", destination)
    return destination


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path)


def ensure_tiles(
    destination: Path,
    shared_data: Path,
    full: bool = False,
    url: str = EUROSAT_URL,
    checksum: str = EUROSAT_CHECKSUM,
    max_download_bytes: int = MAX_DOWNLOAD_BYTES,
    max_extracted_bytes: int = MAX_EXTRACTED_BYTES,
) -> Path:
    """Populate ``destination`` (see module docstring); return where the tiles are."""
    shared = shared_data / ("eurosat" if full else "eurosat-sample")
    linked_elsewhere = destination.is_symlink() and destination.resolve() != shared.resolve()
    if has_tiles(destination) and not (linked_elsewhere and has_tiles(shared)):
        logger.info("Tiles already in %s", destination)
        return destination
    if has_tiles(shared):
        if destination.is_symlink() or destination.exists():
            _remove(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.symlink_to(shared.resolve(), target_is_directory=True)
        logger.info("Linked %s -> %s", destination, shared.resolve())
        return destination
    return download_eurosat(destination, url, checksum, max_download_bytes, max_extracted_bytes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destination", type=Path, default=Path("data/01_raw/eurosat"))
    parser.add_argument("--shared-data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--full", action="store_true", help="link all 27,000 tiles instead of the 300-tile sample")
    parser.add_argument("--url", default=EUROSAT_URL)
    parser.add_argument("--checksum", default=EUROSAT_CHECKSUM)
    parser.add_argument("--max-download-mb", type=int, default=MAX_DOWNLOAD_BYTES >> 20)
    parser.add_argument("--max-extracted-mb", type=int, default=MAX_EXTRACTED_BYTES >> 20)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ensure_tiles(args.destination, args.shared_data, args.full, args.url, args.checksum,
                 args.max_download_mb << 20, args.max_extracted_mb << 20)


if __name__ == "__main__":
    main()
