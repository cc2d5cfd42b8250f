import hashlib
import http.server
import threading
import zipfile
from functools import partial

import pytest
from conftest import SHARED_DATA

from aerial_kedro.data_setup import ChecksumError, ensure_tiles, has_tiles

SHARED_EUROSAT = SHARED_DATA / "eurosat"


@pytest.fixture()
def archive_server(tmp_path, sample_tiles):
    """A loopback HTTP server serving a EuroSAT-shaped zip (classes nested under 2750/)."""
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "EuroSAT.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for label in ("Forest", "River"):
            for path in sorted((sample_tiles / label).glob("*.jpg"))[:3]:
                bundle.write(path, f"2750/{label}/{path.name}")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    yield f"http://127.0.0.1:{server.server_address[1]}/EuroSAT.zip", sha256
    server.shutdown()


def test_download_verifies_and_extracts_class_folders(tmp_path, archive_server):
    url, sha256 = archive_server
    target = tmp_path / "data" / "01_raw" / "eurosat"
    ensure_tiles(target, tmp_path / "no-shared", url=url, checksum=f"sha256:{sha256}")
    assert sorted(p.name for p in target.iterdir()) == ["Forest", "River"]
    assert len(list(target.glob("*/*.jpg"))) == 6


def test_checksum_mismatch_stops_and_leaves_nothing(tmp_path, archive_server):
    url, _ = archive_server
    target = tmp_path / "eurosat"
    with pytest.raises(ChecksumError, match="EuroSAT|eurosat.zip"):
        ensure_tiles(target, tmp_path / "no-shared", url=url, checksum="sha256:" + "0" * 64)
    assert not target.exists()


def test_shared_sample_is_linked_when_present(tmp_path, sample_tiles):
    target = tmp_path / "eurosat"
    ensure_tiles(target, sample_tiles.parent)
    assert target.is_symlink() and has_tiles(target)
    assert len(list(target.glob("*/*.jpg"))) == 300


def test_full_relinks_a_sample_link(tmp_path, sample_tiles):
    shared = tmp_path / "shared"
    (shared / "eurosat" / "Forest").mkdir(parents=True)
    (shared / "eurosat" / "Forest" / "a.jpg").write_bytes((sample_tiles / "Forest" / "Forest_1.jpg").read_bytes())
    (shared / "eurosat-sample").symlink_to(sample_tiles)
    target = tmp_path / "eurosat"
    ensure_tiles(target, shared)
    assert len(list(target.glob("*/*.jpg"))) == 300
    ensure_tiles(target, shared, full=True)
    assert [p.name for p in target.glob("*/*.jpg")] == ["a.jpg"]


@pytest.fixture()
def bomb_server(tmp_path):
    """A loopback HTTP server serving a 40 KB zip that unpacks to 40 MB (one member of zeros)."""
    served = tmp_path / "bomb"
    served.mkdir()
    archive = served / "EuroSAT.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("2750/Forest/Forest_1.jpg", b"\0" * (40 << 20))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/EuroSAT.zip", hashlib.sha256(archive.read_bytes()).hexdigest()
    server.shutdown()


def test_an_archive_over_the_extraction_cap_is_refused_before_extracting(tmp_path, bomb_server):
    from aerial_kedro.data_setup import ArchiveTooLargeError

    url, sha256 = bomb_server
    target = tmp_path / "eurosat"
    with pytest.raises(ArchiveTooLargeError, match="unpacks to 41943040 bytes, over the 10485760-byte"):
        ensure_tiles(target, tmp_path / "no-shared", url=url, checksum=f"sha256:{sha256}",
                     max_extracted_bytes=10 << 20)
    assert not target.exists() and [p.name for p in tmp_path.iterdir()] == ["bomb"]  # no scratch left


def test_a_download_over_the_cap_stops(tmp_path, archive_server):
    from aerial_kedro.data_setup import ArchiveTooLargeError

    url, sha256 = archive_server
    with pytest.raises(ArchiveTooLargeError, match="over the 1000-byte download cap"):
        ensure_tiles(tmp_path / "eurosat", tmp_path / "no-shared", url=url, checksum=f"sha256:{sha256}",
                     max_download_bytes=1000)
    assert not (tmp_path / "eurosat").exists()


def test_default_caps_fit_the_real_eurosat_archive():
    from aerial_kedro.data_setup import MAX_DOWNLOAD_BYTES, MAX_EXTRACTED_BYTES, MAX_MEMBERS

    # EuroSAT.zip: 94,280,567 bytes (torchvision); 27,000 tiles of ~3.5 KB on disk in ../shared/data.
    tiles = [p for p in (SHARED_EUROSAT).rglob("*.jpg")] if SHARED_EUROSAT.is_dir() else []
    assert MAX_DOWNLOAD_BYTES > 94_280_567 and MAX_MEMBERS > 27_000 + 20
    if tiles:
        assert len(tiles) == 27_000 and MAX_EXTRACTED_BYTES > 2 * sum(p.stat().st_size for p in tiles)
