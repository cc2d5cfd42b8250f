"""The progress logger on a real local Spark job: counts arrive from executors, lines are readable."""

import logging
import re
import time

import pandas as pd
import pytest

from aerial_kedro.progress import (
    StageTasks,
    format_duration,
    format_progress,
    progress_logger,
    throughput,
    uncounted_progress,
)

LINE = re.compile(r"^slow job: ([\d,]+)/2,000 items \((\d+) %\)")


def test_format_duration():
    assert [format_duration(s) for s in (0, 45.4, 112, 3600 + 5 * 60 + 7)] == ["0s", "45s", "1m52s", "1h05m"]


def test_format_progress_line():
    line = format_progress("featurize", 12_800, 27_000, 126.0, stage=StageTasks(3, 4, 8, 2))
    assert line == "featurize: 12,800/27,000 tiles (47 %), 126 tiles/s, ETA 1m53s [stage 3: 4/8 tasks done, 2 running]"
    assert format_progress("score", 0, 500, None, unit="chips") == "score: 0/500 chips (0 %), ETA ?"


def test_uncounted_progress_line_shows_time_and_tasks_only():
    line = uncounted_progress("featurize", 27_000, 70.2, stage=StageTasks(2, 3, 8, 2))
    assert line == "featurize: 27,000 tiles, running for 1m10s [stage 2: 3/8 tasks done, 2 running]"


def test_throughput_counts_from_the_first_finished_items():
    assert throughput(0, 5.0, None, 5.0) is None
    assert throughput(200, 20.0, None, 20.0) == 10.0  # nothing seen before: average since the start
    assert throughput(200, 20.0, (20.0, 200), 20.0) == 10.0
    assert throughput(600, 30.0, (20.0, 200), 30.0) == 40.0  # start-up (first 20 s) left out


def _slow_job(spark, counter, rows: int, partitions: int) -> int:
    def work(frames):
        for frame in frames:
            time.sleep(0.25)
            counter.add(len(frame))
            yield pd.DataFrame({"id": frame["id"] * 2})

    return spark.range(0, rows, numPartitions=partitions).mapInPandas(work, "id long").count()


def test_progress_logger_reports_counts_from_a_spark_job(spark, caplog):
    caplog.set_level(logging.INFO, logger="aerial_kedro.progress")
    with progress_logger(spark, total=2000, label="slow job", interval_s=0.2, unit="items") as progress:
        assert _slow_job(spark, progress.counter, rows=2000, partitions=10) == 2000

    messages = [record.getMessage() for record in caplog.records if record.name == "aerial_kedro.progress"]
    ticks = [LINE.match(message) for message in messages[:-1]]
    assert ticks and all(ticks), messages
    counts = [int(match.group(1).replace(",", "")) for match in ticks]
    assert counts == sorted(counts), "progress never goes backwards"
    assert any(0 < count < 2000 for count in counts), f"no intermediate count in {counts}"
    assert any("tasks done" in message for message in messages[:-1]), "the running stage is shown"
    assert re.match(r"slow job: done, 2,000/2,000 items in \d+s \([\d,]+ items/s\)$", messages[-1]), messages[-1]
    assert progress.done == 2000


def test_progress_logger_says_where_a_failed_job_stopped(spark, caplog):
    caplog.set_level(logging.INFO, logger="aerial_kedro.progress")
    with pytest.raises(RuntimeError, match="boom"):
        with progress_logger(spark, total=10, label="broken", interval_s=5):
            raise RuntimeError("boom")
    assert caplog.records[-1].getMessage().startswith("broken: stopped at 0/10 tiles after")
