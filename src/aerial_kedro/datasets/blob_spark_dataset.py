"""Spark DataFrames and Spark ML models at Azure Blob URLs, handed to hadoop-azure unchanged.

Why not kedro-datasets 9.6: ``spark.SparkDataset`` builds an fsspec filesystem for the URL's
scheme and fails on ``wasb``/``wasbs`` ("Protocol not known"), and ``spark.SparkDatasetV2`` turns
``wasb://container@account.blob.core.windows.net/path`` into ``wasb:///path`` (container and
account gone). Spark itself resolves these URLs through hadoop-azure, so the datasets here only:

- validate the URL (``wasb[s]://`` / ``abfs[s]://``, a container, an account host) and pass it on
  verbatim;
- put the catalog's credentials (``account_key`` or a container ``sas_token``) and any
  ``hadoop_conf`` into the running SparkContext's Hadoop configuration before the first access,
  so secrets stay in credentials.yml / environment variables and never in spark.yml;
- with ``emulator_endpoint`` (Azurite), route hadoop-azure's WASB requests to that endpoint (see
  ``route_wasb_to_emulator``);
- turn the failures a user causes (storage unreachable, container missing, key rejected, jars
  missing) into one line naming the culprit.

Example (a catalog entry as conf/base/catalog.yml resolves under `--env=azurite`)::

    tile_index:
      type: aerial_kedro.datasets.blob_spark_dataset.BlobSparkDataset
      filepath: wasb://aerial@devstoreaccount1.blob.localhost/02_intermediate/tile_index
      credentials: azurite_wasb    # {account_key: ..., emulator_endpoint: http://127.0.0.1:10000}
      save_args: {mode: overwrite}
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlparse

from kedro.io.core import AbstractDataset, DatasetError
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession

from aerial_kedro.blob.urls import BlobUrl, BlobUrlError
from aerial_kedro.datasets.spark_jvm import spark_jvm
from aerial_kedro.datasets.spark_ml_model_dataset import SparkMLModelDataset

logger = logging.getLogger(__name__)

_UNREACHABLE = ("Connection refused", "ConnectException", "UnknownHostException", "connect timed out",
                "SocketTimeoutException", "NoRouteToHostException")
_REJECTED = ("Server failed to authenticate", "AuthenticationFailed", "AuthorizationFailure",
             "AuthorizationPermissionMismatch", "This request is not authorized")
_NOT_FOUND = ("PATH_NOT_FOUND", "Path does not exist", "FileNotFoundException")
_NO_DRIVER = ("No FileSystem for scheme", "ClassNotFoundException: org.apache.hadoop.fs.azure")


@dataclass(frozen=True)
class BlobAccess:
    """A dataset's ``credentials`` entry. Every field is optional: on a cluster whose core-site.xml
    already holds the account key (HDInsight's default storage account) none is needed."""

    account_key: str | None = None
    sas_token: str | None = None
    emulator_endpoint: str | None = None

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> BlobAccess:
        credentials = dict(credentials or {})
        unknown = sorted(set(credentials) - {field.name for field in fields(cls)})
        if unknown:
            raise DatasetError(
                f"Unknown credentials key(s) {', '.join(unknown)} for a blob Spark dataset; "
                "allowed: account_key, sas_token, emulator_endpoint"
            )
        return cls(**{key: (str(value) if value is not None else None) for key, value in credentials.items()})

    def __repr__(self) -> str:  # never print a key or a token
        return f"BlobAccess(account_key={'***' if self.account_key else None}, " \
               f"sas_token={'***' if self.sas_token else None}, emulator_endpoint={self.emulator_endpoint})"


def parse_blob_url(filepath: str, access: BlobAccess) -> BlobUrl:
    """The dataset's URL, checked against what its credentials can do with it."""
    try:
        url = BlobUrl.parse(filepath)
    except BlobUrlError as error:
        raise DatasetError(str(error)) from None
    if access.emulator_endpoint and url.scheme != "wasb":
        raise DatasetError(
            f"'{filepath}': Azurite serves plain-HTTP Blob API only; use wasb:// "
            "(abfs:// needs the ADLS Gen2 'dfs' API, which Azurite does not implement)"
        )
    if access.sas_token and url.scheme.startswith("abfs"):
        raise DatasetError(f"'{filepath}': a SAS token needs wasbs:// (abfss:// SAS needs a SASTokenProvider class)")
    return url


def hadoop_settings(url: BlobUrl, access: BlobAccess, hadoop_conf: Mapping[str, Any] | None) -> dict[str, str]:
    """The Hadoop configuration entries hadoop-azure needs for ``url``."""
    settings = {str(key): _conf_value(value) for key, value in (hadoop_conf or {}).items()}
    if access.account_key:
        settings[f"fs.azure.account.key.{url.host}"] = access.account_key
    if access.sas_token:
        settings[f"fs.azure.sas.{url.container}.{url.host}"] = access.sas_token.lstrip("?")
    return settings


def configure_spark(url: BlobUrl, access: BlobAccess, hadoop_conf: Mapping[str, Any] | None) -> SparkSession:
    """Apply the dataset's Hadoop settings (and emulator route) to the running SparkSession."""
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    configuration = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in hadoop_settings(url, access, hadoop_conf).items():
        configuration.set(key, value)
    if access.emulator_endpoint:
        route_wasb_to_emulator(spark, access.emulator_endpoint)
    return spark


def route_wasb_to_emulator(spark: SparkSession, endpoint: str) -> None:
    """Send hadoop-azure's WASB requests to an emulator at ``endpoint`` (``http://host:port``).

    hadoop-azure connects to ``http://<host of the URL>``; its emulator mode
    (``fs.azure.storage.emulator.account.name``) is hard-wired to 127.0.0.1:10000. Azurite takes
    the account from the first label of the request's host (``devstoreaccount1.blob.localhost``),
    so the azure-storage SDK's default proxy, pointed at Azurite, serves any port: requests keep
    their production-style host and reach the emulator. This changes the azure-storage client of
    this JVM only (not Spark's other traffic) and is for local emulator runs only.
    """
    parsed = urlparse(endpoint)
    if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
        raise DatasetError(f"emulator_endpoint '{endpoint}' must look like http://127.0.0.1:10000")
    jvm = spark_jvm(spark)
    operation_context = _java_class(jvm, "com.microsoft.azure.storage.OperationContext")
    address = jvm.java.net.InetSocketAddress(parsed.hostname, parsed.port)
    operation_context.setDefaultProxy(jvm.java.net.Proxy(jvm.java.net.Proxy.Type.HTTP, address))


def _java_class(jvm: Any, name: str) -> Any:
    java_class = jvm
    for part in name.split("."):
        java_class = getattr(java_class, part)
    if type(java_class).__name__ == "JavaPackage":  # py4j's stand-in for a class not on the classpath
        raise DatasetError(_missing_jars_message())
    return java_class


def _missing_jars_message() -> str:
    return (
        "hadoop-azure is not on Spark's classpath: run scripts/fetch_jars.sh and start Spark with "
        "spark.jars=.cache/jars/*/*.jar (conf/azurite/spark.yml does)"
    )


def container_exists(spark: SparkSession, url: BlobUrl) -> bool | None:
    """Whether the URL's container exists (None when that cannot be told)."""
    try:
        jvm = spark_jvm(spark)
        root = jvm.org.apache.hadoop.fs.Path(url.container_url)
        return bool(root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(root))
    except Exception:  # a second failure must not hide the first one
        return None


def explain_failure(error: Exception, url: BlobUrl, access: BlobAccess, spark: SparkSession | None) -> str | None:
    """One line for a failure a user can fix, or None to let the original error stand."""
    text = str(error)
    where = f" at {access.emulator_endpoint} (is Azurite running?)" if access.emulator_endpoint else ""
    if any(marker in text for marker in _NO_DRIVER):
        return _missing_jars_message()
    if any(marker in text for marker in _UNREACHABLE):
        return f"Azure Blob storage account '{url.account}' is not reachable{where}: cannot open {url}"
    if any(marker in text for marker in _REJECTED):
        return (
            f"Azure Blob storage account '{url.account}' rejected the credentials for {url} "
            "(wrong account key or SAS token?)"
        )
    if any(marker in text for marker in _NOT_FOUND) and spark is not None:
        if container_exists(spark, url) is False:
            return f"Container '{url.container}' does not exist in storage account '{url.account}' ({url})"
    return None


def _conf_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class _BlobAccessMixin:
    """Shared by both datasets: configure Spark, then run an action with failures explained."""

    _url: BlobUrl
    _access: BlobAccess
    _hadoop_conf: dict[str, Any]

    def _spark(self) -> SparkSession:
        return configure_spark(self._url, self._access, self._hadoop_conf)

    @contextmanager
    def _explaining(self, spark: SparkSession) -> Iterator[None]:
        """Re-raise a recognised failure as one-line ``DatasetError``; anything else unchanged."""
        try:
            yield
        except Exception as error:
            message = explain_failure(error, self._url, self._access, spark)
            if message is None:
                raise
            logger.debug("Blob access to %s failed", self._url, exc_info=error)
            raise DatasetError(message) from None


class BlobSparkDataset(_BlobAccessMixin, AbstractDataset[DataFrame, DataFrame]):
    """A Spark DataFrame at a ``wasb[s]://`` / ``abfs[s]://`` URL (``load_args``/``save_args`` as in
    kedro-datasets' SparkDataset: reader/writer options, ``mode``, ``partitionBy``)."""

    def __init__(
        self,
        *,
        filepath: str,
        file_format: str = "parquet",
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        hadoop_conf: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._access = BlobAccess.from_credentials(credentials)
        self._url = parse_blob_url(filepath, self._access)
        self._file_format = file_format
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})
        self._hadoop_conf = dict(hadoop_conf or {})
        self.metadata = metadata

    def load(self) -> DataFrame:
        spark = self._spark()
        with self._explaining(spark):
            return spark.read.load(str(self._url), self._file_format, **self._load_args)

    def save(self, data: DataFrame) -> None:
        spark = self._spark()
        save_args = dict(self._save_args)
        writer = data.write
        if "partitionBy" in save_args:
            writer = writer.partitionBy(*_as_list(save_args.pop("partitionBy")))
        if "mode" in save_args:
            writer = writer.mode(save_args.pop("mode"))
        with self._explaining(spark):
            writer.save(str(self._url), self._file_format, **save_args)

    def _exists(self) -> bool:
        spark = self._spark()
        with self._explaining(spark):
            path = spark_jvm(spark).org.apache.hadoop.fs.Path(str(self._url))
            filesystem = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
            return bool(filesystem.exists(path))

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._url),
            "file_format": self._file_format,
            "load_args": self._load_args,
            "save_args": self._save_args,
            "credentials": repr(self._access),
        }


class BlobSparkMLModelDataset(_BlobAccessMixin, SparkMLModelDataset):
    """``SparkMLModelDataset`` at a blob URL, with the same credentials handling."""

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        hadoop_conf: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._access = BlobAccess.from_credentials(credentials)
        self._url = parse_blob_url(filepath, self._access)
        self._hadoop_conf = dict(hadoop_conf or {})
        super().__init__(filepath=str(self._url), metadata=metadata)

    def load(self) -> PipelineModel:
        spark = self._spark()
        with self._explaining(spark):
            return super().load()

    def save(self, data: PipelineModel) -> None:
        spark = self._spark()
        with self._explaining(spark):
            super().save(data)

    def _exists(self) -> bool:
        spark = self._spark()
        with self._explaining(spark):
            return super()._exists()


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
