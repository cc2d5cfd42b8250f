import hashlib
import http.server
import threading
import zipfile
from functools import partial

import pytest

from aerial_kedro.data_setup import ChecksumError, ensure_tiles, has_tiles


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
