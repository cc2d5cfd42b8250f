"""kedro-datasets' JSONDataset, but a product on local disk is never left half-written."""

from __future__ import annotations

import json
import os
from typing import Any

from kedro_datasets.json import JSONDataset as KedroJSONDataset
from kedro_datasets.json.json_dataset import get_filepath_str

from aerial_kedro.datasets.fsspec_file import replacing


class JSONDataset(KedroJSONDataset):
    """Same arguments and behaviour as ``json.JSONDataset``, with a safer save.

    kedro-datasets opens the target with ``"w"`` and ``json.dump``s into it: a value that fails to
    serialise midway, or a killed run, leaves a truncated file where the previous report was. Here
    the document is serialised first (a bad value fails before any file is touched) and, on
    local disk, written to a scratch name beside the target and renamed onto it. Blob storage
    needs no rename: a blob appears only once its upload commits.
    """

    def save(self, data: Any) -> None:
        text = json.dumps(data, **self._save_args)
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        if self._protocol == "file":
            os.makedirs(os.path.dirname(save_path) or ".", exist_ok=True)
            with replacing(save_path) as scratch, open(scratch, "w", encoding="utf-8") as file:
                file.write(text)
        else:
            with self._fs.open(save_path, **self._fs_open_args_save) as file:
                file.write(text)
        self._invalidate_cache()
