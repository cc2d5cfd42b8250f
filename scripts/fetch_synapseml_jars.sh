#!/usr/bin/env bash
# Resolve SynapseML's JVM jars (ONNXModel, LightGBMClassifier, TrainClassifier,
# ComputeModelStatistics and their runtimes) from Maven Central into .cache/jars/synapseml/.
# Idempotent: does nothing when the cache is newer than the pom. Spark picks the jars up through
# spark.jars (.cache/jars/*/*.jar): tests/conftest.py for the test session, conf/<env>/spark.yml
# for `kedro run`. Every artifact whose name matches a jar pyspark already ships is left out (the
# pom excludes the known ones; this also catches any that a new version drags in).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/jvm/synapseml/pom.xml"
OUT="$ROOT/.cache/jars/synapseml"
STAMP="$OUT/.fetched"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

pyspark_jars_dir() {
  "$PYTHON" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))'
}

# artifactIds of pyspark's jars, comma-separated: "spark-core_2.12-3.5.9.jar" -> "spark-core_2.12".
pyspark_artifact_ids() {
  find "$(pyspark_jars_dir)" -maxdepth 1 -name '*.jar' -printf '%f\n' |
    sed -E 's/-[0-9].*$//' | sort -u | paste -sd, -
}

main() {
  if [[ -f "$STAMP" && "$STAMP" -nt "$POM" ]]; then
    echo "fetch_synapseml_jars: $OUT is up to date"
    return
  fi
  rm -rf "$OUT"
  mkdir -p "$OUT"
  mvn -q -B -f "$POM" dependency:copy-dependencies \
    -DoutputDirectory="$OUT" -DincludeScope=runtime \
    -DexcludeGroupIds=org.apache.spark,org.scala-lang \
    -DexcludeArtifactIds="$(pyspark_artifact_ids)"
  touch "$STAMP"
  echo "fetch_synapseml_jars: $(find "$OUT" -name '*.jar' | wc -l) jars," \
    "$(du -sh "$OUT" | cut -f1) in $OUT:"
  find "$OUT" -name '*.jar' -printf '  %f\n' | sort
}

main "$@"
