"""Item 12: files that hold secrets are ignored by git, whatever the environment or extension.

Asked of real git (``git check-ignore``) in a scratch repository holding a copy of the project's
.gitignore: the project's own repository is not touched.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import PROJECT_ROOT

SECRET_FILES = [
    "conf/local/credentials.yml",
    "conf/local/credentials.yaml",
    "conf/local/credentials_prod.yml",
    "conf/local/credentials.json",
    "conf/base/credentials.yml",
    "conf/prod/credentials.yml",
    "conf/hdinsight/credentials_real.yml",
    "conf/hdinsight/sub/credentials.yml",
    "conf/local/my-credentials.yml",
    ".env",
    ".env.local",
    "conf/hdinsight/azure.env",
]
KEPT_FILES = [
    "conf/azurite/credentials.yml",  # templates: ${oc.env:...} references and the public emulator key
    "conf/hdinsight/credentials.yml",
    "conf/base/catalog.yml",
    "conf/local/spark.yml",
    "src/aerial_kedro/settings.py",
    "docs/environment.md",
]


def ignored(tmp_path, paths: list[str]) -> set[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    shutil.copy(PROJECT_ROOT / ".gitignore", tmp_path / ".gitignore")
    result = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", "--no-index", "--stdin"],
                            input="\n".join(paths) + "\n", capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    return set(result.stdout.split())


def test_secret_files_are_ignored_and_templates_are_not(tmp_path):
    matched = ignored(tmp_path, SECRET_FILES + KEPT_FILES)
    assert sorted(set(SECRET_FILES) - matched) == []
    assert sorted(matched & set(KEPT_FILES)) == []
