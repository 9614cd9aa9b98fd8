#!/usr/bin/env bash
# Shards against one machine (docs/statistics.md, "Shards"): SHARDS shards
# of PER + PER iterations (run one after another here, each with its own
# RUNNER_NAME, as a CI matrix would run them at once), merged and judged as
# blocks, against one run of SHARDS x PER iterations a side of the same
# variants. Prints every metric either run decided, with its direction in
# both, and fails if a decided metric points the other way in the other run.
#
#   harness/studies/shards.sh                       # 4 x (3 + 3) against 12 + 12, built-in variants
#   SHARDS=2 PER=3 harness/studies/shards.sh        # a short form
#
# Environment: SHARDS, PER, OUT (folder), SOAK_ARGS (extra `soak ab` flags,
# e.g. "--profile ci"), BIN (binary folder; built in release when unset).
set -euo pipefail
cd "$(dirname "$0")/../.."

SHARDS=${SHARDS:-4}
PER=${PER:-3}
OUT=${OUT:-target/shard-study}
if [ -z "${BIN:-}" ]; then
  cargo build --release --workspace --locked
  BIN=target/release
fi
rm -rf "$OUT"
mkdir -p "$OUT"

# A shard exits 0 once it has measured; anything else stops the study.
for i in $(seq 1 "$SHARDS"); do
  # shellcheck disable=SC2086
  RUNNER_NAME="study-runner-$i" "$BIN/soak" ab --iterations "$PER" --shard "$i/$SHARDS" \
    --quiet --out "$OUT/shard-$i" ${SOAK_ARGS:-}
done
code=0
"$BIN/soak" merge "$OUT"/shard-* --out "$OUT/merged" --json > "$OUT/merged.json" || code=$?
[ "$code" -le 1 ] || { echo "shard study: soak merge failed with exit $code" >&2; exit "$code"; }
code=0
# shellcheck disable=SC2086
"$BIN/soak" ab --iterations "$((SHARDS * PER))" --quiet --out "$OUT/single" ${SOAK_ARGS:-} || code=$?
[ "$code" -le 1 ] || { echo "shard study: the single run failed with exit $code" >&2; exit "$code"; }

python3 - "$OUT/merged/verdict.json" "$OUT/single/verdict.json" <<'PY'
import json, sys
def load(path):
    metrics = {}
    for m in json.load(open(path))["metrics"]:
        c = m.get("comparison")
        if c:
            metrics[m["metric"]] = (c["verdict"]["kind"], c["ratio"])
    return metrics
merged, single = load(sys.argv[1]), load(sys.argv[2])
decided = ("regression", "improvement")
bad = checked = 0
print(f"{'metric':<34} {'merged shards':>26} {'one machine':>26}")
for name in merged:
    if name not in single:
        continue
    (mk, mr), (sk, sr) = merged[name], single[name]
    if mk not in decided and sk not in decided:
        continue
    checked += 1
    agree = (mr > 1) == (sr > 1)
    bad += not agree
    mark = "" if agree else "   <- opposite directions"
    print(f"{name:<34} {mk:>14} {mr:>10.3f}x {sk:>14} {sr:>10.3f}x{mark}")
print(f"shard study: {checked} decided metrics, {bad} in opposite directions")
sys.exit(1 if bad else 0)
PY
