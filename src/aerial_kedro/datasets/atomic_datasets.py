"""kedro-datasets' JSON, CSV and Matplotlib datasets, but a product on local disk is replaced in
one step: never seen half-written, never lost to a failed or killed save.

kedro-datasets opens the target for writing and streams into it: a value that fails midway (an
object ``json.dump`` cannot serialise), or a killed run, leaves a truncated file where the previous
report, list or map was. Here the content is rendered in memory first (a bad value fails before
any file is touched) and, on local disk, written to a scratch name beside the target and renamed
onto it (:func:`aerial_kedro.datasets.fsspec_file.replacing`). Blob storage needs no rename: a
blob appears only once its upload commits. Arguments and behaviour are otherwise kedro-datasets'.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import pandas as pd
from kedro_datasets.json import JSONDataset as KedroJSONDataset
from kedro_datasets.json.json_dataset import get_filepath_str
from kedro_datasets.matplotlib import MatplotlibDataset as KedroMatplotlibDataset
from kedro_datasets.pandas import CSVDataset as KedroCSVDataset
from matplotlib.figure import Figure

from aerial_kedro.datasets.fsspec_file import replacing


def _write_whole(dataset: Any, path: str, content: str | bytes) -> None:
    """``content`` at ``path`` of ``dataset``'s filesystem, replacing any previous file in one step
    on local disk."""
    if dataset._protocol == "file":
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        mode = "wb" if isinstance(content, bytes) else "w"
        encoding = None if isinstance(content, bytes) else "utf-8"
        with replacing(path) as scratch, open(scratch, mode, encoding=encoding) as file:
            file.write(content)
    else:
        with dataset._fs.open(path, **dataset._fs_open_args_save) as file:
            file.write(content)


class JSONDataset(KedroJSONDataset):
    """``json.JSONDataset`` whose saves replace the document whole (see the module)."""

    def save(self, data: Any) -> None:
        text = json.dumps(data, **self._save_args)
        _write_whole(self, get_filepath_str(self._get_save_path(), self._protocol), text)
        self._invalidate_cache()


class CSVDataset(KedroCSVDataset):
    """``pandas.CSVDataset`` whose saves replace the table whole (see the module)."""

    def save(self, data: pd.DataFrame) -> None:
        text = data.to_csv(**self._save_args)
        _write_whole(self, get_filepath_str(self._get_save_path(), self._protocol), text)
        self._invalidate_cache()


class MatplotlibDataset(KedroMatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` whose saves replace each image whole (see the module)."""

    def _save_to_fs(self, full_key_path: str, plot: Figure) -> None:
        buffer = io.BytesIO()
        plot.savefig(buffer, **self._save_args)
        _write_whole(self, full_key_path, buffer.getvalue())
