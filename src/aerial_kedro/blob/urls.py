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


# Secrets that may sit inside a URL or next to one in a message: a URL's query string and
# fragment (SAS tokens: sv=...&sig=...), its userinfo password, and the secret parts of an Azure
# connection string. Everything the blob CLI, preflight and run tracking print, log or store goes
# through ``redact_url``.
_ANY_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^\s'\"<>`]*)")
_SECRET_FIELD = re.compile(
    r"(?i)\b(?P<key>AccountKey|SharedAccessSignature|SharedAccessKey|sig|signature)=(?P<value>[^;&\s'\"]+)"
)
_AZURE_SCHEMES = {"wasb", "wasbs", "abfs", "abfss"}
REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """``url`` (or any text holding URLs) without the parts that can hold a secret.

    A SAS token rides in the query string (``?sv=...&sig=...``) and is a bearer credential: whoever
    reads it from a log line, an error message, a GeoTIFF tag or an MLflow parameter can use the
    storage account. So every ``scheme://`` URL loses its query string and fragment, and its
    userinfo (``user:pass@host`` -> ``host``; a token may pose as a user name). In
    ``wasb[s]://``/``abfs[s]://`` the userinfo is the container: it is kept, minus any ``:password``. ``AccountKey=``, ``SharedAccessSignature=`` and
    ``sig=`` values outside URLs (connection strings, a bare SAS token) become ``REDACTED``.
    Local paths are returned unchanged: text without ``://`` or such a field is not touched.
    """
    text = str(url)
    text = _ANY_URL.sub(_redact_one_url, text)
    return _SECRET_FIELD.sub(lambda match: f"{match['key']}={REDACTED}", text)


def _redact_one_url(match: re.Match[str]) -> str:
    scheme, rest = match["scheme"], match["rest"]
    for separator in ("?", "#"):
        rest = rest.split(separator, 1)[0]
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at:
        container = userinfo.split(":", 1)[0] if scheme.lower() in _AZURE_SCHEMES else ""
        authority = f"{container}@{host}" if container else host
    return f"{scheme}://{authority}{slash}{path}"
