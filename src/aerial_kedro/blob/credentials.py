"""Which credential reaches a blob URL's account outside Spark, as an azure-storage-blob
connection string.

A dataset's own ``credentials`` (:class:`~aerial_kedro.datasets.blob_spark_dataset.BlobAccess`)
come first; else what the running Spark session already holds for that account: the account key
or container SAS that the Blob Spark datasets, or ``core-site.xml``, put in its Hadoop
configuration, and the emulator route of ``route_wasb_to_emulator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aerial_kedro.blob.urls import BlobUrl

if TYPE_CHECKING:
    from aerial_kedro.datasets.blob_spark_dataset import BlobAccess


def has_credential(access: BlobAccess) -> bool:
    """True when ``access`` holds an account key or a SAS token."""
    return bool(access.account_key or access.sas_token)


def blob_endpoint_of(url: BlobUrl, access: BlobAccess) -> str:
    """The Blob service URL of ``url``'s account (an emulator's path-style URL with one)."""
    if access.emulator_endpoint:
        return f"{access.emulator_endpoint.rstrip('/')}/{url.account}"
    # An ADLS Gen2 account (abfs, host <account>.dfs.<suffix>) serves the Blob API on .blob.
    host = url.host.replace(".dfs.", ".blob.", 1)
    return f"{'https' if url.secure else 'http'}://{host}"


def blob_connection_string(url: BlobUrl, access: BlobAccess) -> str | None:
    """An azure-storage-blob connection string for ``url``'s account, None without a credential."""
    endpoint = blob_endpoint_of(url, access)
    if access.sas_token:
        return f"BlobEndpoint={endpoint};SharedAccessSignature={access.sas_token.lstrip('?')}"
    if access.account_key:
        return (f"DefaultEndpointsProtocol={endpoint.split(':', 1)[0]};AccountName={url.account};"
                f"AccountKey={access.account_key};BlobEndpoint={endpoint};")  # fmt: skip
    return None


def access_from_spark(url: BlobUrl) -> BlobAccess:
    """The credentials the active Spark session holds for ``url`` (empty without a session).

    The Blob Spark datasets put the account key (``fs.azure.account.key.<host>``) or container
    SAS (``fs.azure.sas.<container>.<host>``) there; on a cluster, ``core-site.xml`` may. A key
    kept encrypted (a ``fs.azure.account.keyprovider.<host>``, HDInsight's default) is not
    usable here. Emulator hosts (``*.localhost``) reach Azurite through the proxy that
    ``route_wasb_to_emulator`` set on hadoop-azure.
    """
    from pyspark.sql import SparkSession

    # Imported here: aerial_kedro.datasets imports this module (through its run lock).
    from aerial_kedro.datasets.blob_spark_dataset import BlobAccess

    spark = SparkSession.getActiveSession()
    if spark is None:
        return BlobAccess()
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    key = (
        None
        if conf.get(f"fs.azure.account.keyprovider.{url.host}")
        else conf.get(f"fs.azure.account.key.{url.host}")
    )
    sas = conf.get(f"fs.azure.sas.{url.container}.{url.host}")
    endpoint = _emulator_route(spark) if url.host.endswith(".localhost") else None
    return BlobAccess(account_key=key, sas_token=sas, emulator_endpoint=endpoint)


def _emulator_route(spark: object) -> str | None:
    """``http://host:port`` of hadoop-azure's default proxy (the Azurite route), if one is set."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    context = jvm.com.microsoft.azure.storage.OperationContext
    if type(context).__name__ == "JavaPackage":  # hadoop-azure not on the classpath
        return None
    proxy = context.getDefaultProxy()
    if proxy is None or proxy.address() is None:
        return None
    return f"http://{proxy.address().getHostString()}:{proxy.address().getPort()}"
