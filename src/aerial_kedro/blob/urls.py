"""Azure Blob URLs as Spark's hadoop-azure reads them: ``wasb[s]://`` and ``abfs[s]://``.

``wasbs://<container>@<account>.blob.core.windows.net/<path>`` names the container and the
storage account; the account's host may also be an emulator host (``devstoreaccount1.blob.localhost``)
or hadoop-azure's emulator account (``devstoreaccount1``, served on 127.0.0.1:10000 only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEMES = ("wasb", "wasbs", "abfs", "abfss")
# Azure's rule: 3-63 characters, lowercase letters, digits and single hyphens, starting and
# ending with a letter or digit ($root and $web are the two reserved names).
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$|^\$root$|^\$web$")
_URL = re.compile(r"^(?P<scheme>[a-z]+)://(?P<authority>[^/]*)(?:/(?P<path>.*))?$")


def is_container_name(name: str) -> bool:
    return bool(_CONTAINER.match(name))


class BlobUrlError(ValueError):
    """A blob URL that hadoop-azure cannot open; the message names the URL and what is wrong."""


@dataclass(frozen=True)
class BlobUrl:
    scheme: str
    container: str
    host: str
    path: str

    @property
    def account(self) -> str:
        """The storage account name: the first label of the host."""
        return self.host.split(".", 1)[0].split(":", 1)[0]

    @property
    def secure(self) -> bool:
        return self.scheme.endswith("s")

    @property
    def container_url(self) -> str:
        return f"{self.scheme}://{self.container}@{self.host}/"

    def __str__(self) -> str:
        return f"{self.container_url}{self.path}"

    @classmethod
    def parse(cls, url: str) -> BlobUrl:
        match = _URL.match(str(url))
        if not match or match["scheme"] not in SCHEMES:
            raise BlobUrlError(
                f"'{url}' is not an Azure Blob URL: expected "
                f"{'|'.join(SCHEMES)}://<container>@<account host>/<path>"
            )
        container, at, host = match["authority"].partition("@")
        if not at or not host:
            raise BlobUrlError(
                f"'{url}' names no container: write {match['scheme']}://<container>@<account host>/<path>"
            )
        if not is_container_name(container):
            raise BlobUrlError(
                f"'{url}': '{container}' is not a valid container name "
                "(3-63 lowercase letters, digits or single hyphens)"
            )
        return cls(match["scheme"], container, host, (match["path"] or "").strip("/"))
