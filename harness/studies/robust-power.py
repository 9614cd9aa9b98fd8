#!/usr/bin/env python3
"""Power of three regression tests on real A/A pools (docs/statistics.md).

For each pool folder (an A/A `soak ab`, e.g. target/gate-study/pool) and
each main metric, draws `n` + `n` iterations without replacement, slows
one side by 10 % (or not, for false alarms) and counts how often each test
calls a regression the way the gate's first Holm step does: one-sided
p <= 0.05 / 13 and the estimate beyond the 5 % noise band. Tests, on log times:

  welch  Welch's t on means (the gate's test)
  ytop   Yuen's trimmed t with each side's slowest iteration winsorized
         (machine slowdowns only ever make an iteration slower)
  ysym   Yuen's trimmed t, one iteration trimmed at each end

    harness/studies/robust-power.py target/gate-study/pool [N] [TRIALS]
"""
import glob
import os
import sys

import numpy as np
from scipy import stats

METRICS = ["§1", "§A.1", "§C.2", "§C.4", "§D.1", "§D.4", "total"]
ALPHA = 0.05 / 13
BAND = np.log(1.05)
SLOWDOWN = np.log(1.10)


def load(pool):
    values = {m: [] for m in METRICS}
    for side in ("baseline", "treatment"):
        for folder in sorted(glob.glob(os.path.join(pool, side, "run-*"))):
            if not os.path.basename(folder)[4:].isdigit():
                continue  # run-K-failed-N
            with open(os.path.join(folder, "totals.tsv")) as totals:
                for line in totals.read().splitlines()[1:]:
                    fields = line.split("\t")
                    if fields[0] in values:
                        values[fields[0]].append(np.log(float(fields[2])))
    return {m: np.array(v) for m, v in values.items()}


def t_test(dx, dy, hx, hy, shift):
    se = np.sqrt(dx + dy)
    df = (dx + dy) ** 2 / (dx**2 / (hx - 1) + dy**2 / (hy - 1))
    return shift, stats.t.sf(shift / se, df)


def welch(x, y):
    return t_test(x.var(ddof=1) / len(x), y.var(ddof=1) / len(y), len(x), len(y), y.mean() - x.mean())


def yuen(x, y, low, high):
    def parts(z):
        z = np.sort(z)
        n = len(z)
        kept = z[low : n - high]
        w = z.copy()
        w[:low] = z[low]
        w[n - high :] = z[n - high - 1]
        h = len(kept)
        return kept.mean(), (n - 1) * w.var(ddof=1) / (h * (h - 1)), h

    mx, dx, hx = parts(x)
    my, dy, hy = parts(y)
    return t_test(dx, dy, hx, hy, my - mx)


TESTS = {
    "welch": welch,
    "ytop": lambda x, y: yuen(x, y, 0, 1),
    "ysym": lambda x, y: yuen(x, y, 1, 1),
}


def main():
    pools = sys.argv[1].split(",")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    trials = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    rng = np.random.default_rng(1)
    for pool in pools:
        values = load(pool)
        print(f"{pool} (n = {n} a side, {trials} draws)")
        for metric in METRICS:
            z = values[metric]
            counts = {name: [0, 0] for name in TESTS}
            for _ in range(trials):
                order = rng.permutation(len(z))
                x, y = z[order[:n]], z[order[n : 2 * n]]
                for k, shift in enumerate((0.0, SLOWDOWN)):
                    for name, test in TESTS.items():
                        estimate, p = test(x, y + shift)
                        if p <= ALPHA and estimate > BAND:
                            counts[name][k] += 1
            shown = "  ".join(
                f"{name} false alarm {a / trials:.3f} caught 10 % {c / trials:.2f}"
                for name, (a, c) in counts.items()
            )
            print(f"  {metric:6} {shown}")


if __name__ == "__main__":
    main()
