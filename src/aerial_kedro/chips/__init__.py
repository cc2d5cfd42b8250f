"""Chips of a scored source, apart from the pipelines that use them (as torchgeo keeps samplers
apart from datasets): ``planning`` cuts sources into chips on the grid and fixes a run's id,
``inference`` reads and featurizes them in Spark. Used alike by score, reference, assess, change
and the benchmarks."""
