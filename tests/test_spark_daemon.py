import os
import sys
import zipfile
import zipimport
from pathlib import Path

import pytest
import yaml

from aerial_kedro import spark_daemon
from aerial_kedro.spark_daemon import invalidate_if_changed, needs_workaround

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _zip_with(path: Path, *names: str) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "VALUE = 1\n")


def test_an_unchanged_archive_is_not_read_again_and_a_changed_one_is(tmp_path, monkeypatch):
    monkeypatch.setattr(spark_daemon, "_directory_read", {})
    archive = tmp_path / "modules.zip"
    _zip_with(archive, "first.py")
    importer = zipimport.zipimporter(str(archive))
    reads = []
    monkeypatch.setattr(spark_daemon, "_invalidate_caches", lambda imp: reads.append(imp.archive))

    invalidate_if_changed(importer)
    invalidate_if_changed(importer)
    assert reads == [str(archive)]

    _zip_with(archive, "first.py", "second.py")
    stamp = archive.stat()
    os.utime(archive, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    invalidate_if_changed(importer)
    assert reads == [str(archive), str(archive)]


@pytest.mark.skipif(not needs_workaround(sys.version_info[:2]), reason="CPython 3.10/3.11 only")
def test_a_changed_archive_is_still_seen_by_imports(tmp_path, monkeypatch):
    monkeypatch.setattr(spark_daemon, "_directory_read", {})
    archive = tmp_path / "modules.zip"
    _zip_with(archive, "first.py")
    importer = zipimport.zipimporter(str(archive))
    invalidate_if_changed(importer)
    assert importer.find_spec("second") is None

    _zip_with(archive, "first.py", "second.py")
    stamp = archive.stat()
    os.utime(archive, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    invalidate_if_changed(importer)
    assert importer.find_spec("second") is not None


def test_only_the_affected_python_versions_are_patched():
    assert needs_workaround((3, 10)) and needs_workaround((3, 11))
    assert not needs_workaround((3, 9)) and not needs_workaround((3, 12))


def test_every_environment_runs_the_daemon():
    base = yaml.safe_load((PROJECT_ROOT / "conf/base/spark.yml").read_text())
    assert base["spark.python.daemon.module"] == spark_daemon.__name__
    for env in ("local", "azurite", "hdinsight", "standalone"):
        spark_yml = PROJECT_ROOT / "conf" / env / "spark.yml"
        if spark_yml.exists():
            overrides = yaml.safe_load(spark_yml.read_text()) or {}
            assert "spark.python.daemon.module" not in overrides, env


def test_spark_tasks_run_in_the_patched_daemon(spark):
    def patched(frames):
        for frame in frames:
            name = zipimport.zipimporter.invalidate_caches.__name__
            yield frame.assign(name=name)[["name"]]

    names = {
        row.name
        for row in spark.range(4, numPartitions=2).mapInPandas(patched, "name string").collect()
    }
    expected = (
        "invalidate_if_changed" if needs_workaround(sys.version_info[:2]) else "invalidate_caches"
    )
    assert names == {expected}
