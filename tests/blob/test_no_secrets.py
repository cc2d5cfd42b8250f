"""No storage account key or SAS token in the project tree (the public Azurite key excepted).

Same check from a shell (see docs/hdinsight.md):
    grep -rnIE --exclude-dir={.git,.venv,.cache,data,mlruns,.pytest_cache,.ruff_cache,.viz,__pycache__} \\
      '[A-Za-z0-9+/]{86}==|AccountKey=[A-Za-z0-9+/=]{20,}|[?&]sig=[A-Za-z0-9%+/=]{16,}|SharedAccessSignature=s[v]=' . \\
      | grep -v 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
"""

from __future__ import annotations

import re
from pathlib import Path

from blob.azurite import EMULATOR_KEY, PROJECT_ROOT

SKIPPED_DIRS = {".git", ".venv", ".cache", "data", "mlruns", ".pytest_cache", ".ruff_cache", ".viz",
                "__pycache__", "node_modules", "build", "dist", "spark-warehouse", "metastore_db"}
SECRET = re.compile(
    r"[A-Za-z0-9+/]{86}=="                      # an account key: 64 bytes, base64
    r"|AccountKey=[A-Za-z0-9+/=]{20,}"          # a key inside a connection string
    r"|[?&]sig=[A-Za-z0-9%+/=]{16,}"            # a SAS token's signature
    r"|SharedAccessSignature=s[v]="             # a SAS connection string
)


def project_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*"):
        if any(part in SKIPPED_DIRS for part in path.relative_to(root).parts) or not path.is_file():
            continue
        if path.stat().st_size < 5_000_000:
            files.append(path)
    return files


def secrets_in(path: Path) -> list[str]:
    data = path.read_bytes()
    if b"\0" in data[:4096]:
        return []  # binary
    text = data.decode("utf-8", errors="replace").replace(EMULATOR_KEY, "<public emulator key>")
    return [f"{path}:{number}: {match.group(0)[:24]}..." for number, line in enumerate(text.splitlines(), 1)
            for match in SECRET.finditer(line)]


def test_the_pattern_catches_keys_and_sas_tokens():
    fake_key = "A" * 86 + "=="
    assert SECRET.search(f"AccountKey={fake_key};")
    assert SECRET.search("https://a.blob.core.windows.net/c?sv=2022-11-02&ss=b&" + "sig=" + "AbCdEfGhIjKlMnOpQrStUv%3D")
    assert SECRET.search("BlobEndpoint=https://a.blob.core.windows.net/;" + "SharedAccessSignature=" + "sv=2022-11-02")
    assert not SECRET.search(f"AccountKey={EMULATOR_KEY};".replace(EMULATOR_KEY, "<public emulator key>"))


def test_no_secret_in_the_tree():
    found = [hit for path in project_files(PROJECT_ROOT) for hit in secrets_in(path)]
    assert not found, "\n".join(found)
