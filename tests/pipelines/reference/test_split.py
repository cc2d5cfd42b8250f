import pandas as pd

from aerial_kedro.pipelines.reference.split import block_key, spatial_block_split


def _grid(n_rows: int, n_cols: int, label_of) -> pd.DataFrame:
    rows = [
        {"crs": "EPSG:32633", "row": r, "col": c, "label": label_of(r, c)}
        for r in range(-100, -100 + n_rows)
        for c in range(800, 800 + n_cols)
    ]
    return pd.DataFrame(rows)


def test_blocks_never_straddle_the_split():
    chips = _grid(16, 16, lambda r, c: "forest" if c < 806 else "cropland")
    split = spatial_block_split(chips, test_fraction=0.3, block_chips=4, seed=42)
    blocks = [block_key(*v, 4) for v in zip(chips["crs"], chips["row"], chips["col"], strict=True)]
    per_block = pd.DataFrame({"block": blocks, "split": split}).groupby("block")["split"].nunique()
    assert (per_block == 1).all()
    assert set(split) == {"train", "test"}


def test_every_class_in_two_or_more_blocks_gets_test_and_train_chips():
    chips = _grid(16, 16, lambda r, c: "built" if (r, c) in {(-100, 800), (-92, 812)} else "cropland")
    split = spatial_block_split(chips, test_fraction=0.3, block_chips=4, seed=1)
    for label in ("built", "cropland"):
        assert set(split[chips["label"] == label]) == {"train", "test"}, label
    share = (split[chips["label"] == "cropland"] == "test").mean()
    assert 0.15 < share < 0.45


def test_split_is_seeded_and_deterministic():
    chips = _grid(12, 12, lambda r, c: "forest" if (r + c) % 3 else "water")
    a = spatial_block_split(chips, 0.3, 3, seed=7)
    assert a.equals(spatial_block_split(chips.sample(frac=1, random_state=0), 0.3, 3, seed=7).sort_index())
    assert not a.equals(spatial_block_split(chips, 0.3, 3, seed=8))


def test_class_in_a_single_block_stays_in_training():
    chips = _grid(8, 8, lambda r, c: "built" if (r, c) == (-100, 800) else "cropland")
    split = spatial_block_split(chips, 0.5, 4, seed=3)
    assert split[chips["label"] == "built"].tolist() == ["train"]
