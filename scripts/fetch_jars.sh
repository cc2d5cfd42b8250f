#!/usr/bin/env bash
# Resolve the JVM jars pyspark's wheel lacks (hadoop-azure and its few missing dependencies) from
# Maven Central into .cache/jars/hadoop-azure/. Idempotent: does nothing when the cache is newer
# than the pom. Spark picks the jars up through spark.jars (.cache/jars/*/*.jar):
# tests/conftest.py for the test session, conf/azurite/spark.yml for `kedro run --env=azurite`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/jvm/hadoop-azure/pom.xml"
OUT="$ROOT/.cache/jars/hadoop-azure"
STAMP="$OUT/.fetched"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

pyspark_hadoop_version() {
  local jars
  jars="$("$PYTHON" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
  find "$jars" -maxdepth 1 -name 'hadoop-client-api-*.jar' -printf '%f\n' |
    sed -E 's/^hadoop-client-api-(.*)\.jar$/\1/'
}

pom_hadoop_version() {
  sed -nE 's:.*<hadoop.version>(.*)</hadoop.version>.*:\1:p' "$POM"
}

check_versions() {
  local spark_hadoop pom_hadoop
  spark_hadoop="$(pyspark_hadoop_version)"
  pom_hadoop="$(pom_hadoop_version)"
  if [[ -n "$spark_hadoop" && "$spark_hadoop" != "$pom_hadoop" ]]; then
    echo "fetch_jars: pyspark ships Hadoop $spark_hadoop but $POM pins hadoop.version $pom_hadoop;" \
      "set it to $spark_hadoop" >&2
    exit 1
  fi
}

main() {
  if [[ -f "$STAMP" && "$STAMP" -nt "$POM" ]]; then
    echo "fetch_jars: $OUT is up to date"
    return
  fi
  if [[ -x "$PYTHON" ]]; then
    check_versions
  fi
  rm -rf "$OUT"
  mkdir -p "$OUT"
  mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
    -DoutputDirectory="$OUT" -DincludeScope=runtime
  touch "$STAMP"
  echo "fetch_jars: $(find "$OUT" -name '*.jar' | wc -l) jars in $OUT:"
  find "$OUT" -name '*.jar' -printf '  %f\n' | sort
}

main "$@"
