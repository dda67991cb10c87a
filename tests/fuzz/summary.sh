#!/bin/sh
# summary.sh — a markdown table of fuzz campaign results from the logs of tests/fuzz/run.sh campaign
# (build-fuzz/logs/<target>.log, libFuzzer -fork=1 status lines). Several log directories (rounds that
# continued from the same corpus) are summed: executions and seconds added, coverage (cov: edges, ft:
# features, corpus size) from the last round that ran the target.
#   Usage: tests/fuzz/summary.sh [LOGDIR...]   (default build-fuzz/logs)
[ $# -gt 0 ] || set -- build-fuzz/logs
echo "| target | executions | seconds | exec/s | cov | ft | corpus | crash+timeout+oom | 1M reached |"
echo "|---|---|---|---|---|---|---|---|---|"
for dir in "$@"; do
    for f in "$dir"/fuzz_*.log; do
        case "$f" in *.regress.log) continue ;; esac
        [ -e "$f" ] || continue
        t=$(basename "$f" .log)
        grep -E '^#[0-9]+: cov' "$f" | tail -n 1 |
            sed -E "s/^#([0-9]+): cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+) exec\/s ([0-9]+) oom\/timeout\/crash: ([0-9]+)\/([0-9]+)\/([0-9]+) time: ([0-9]+)s.*/$t \1 \9 \2 \3 \4 \6 \7 \8/"
    done
done | awk '
    { execs[$1] += $2; secs[$1] += $3; cov[$1] = $4; ft[$1] = $5; corp[$1] = $6; bad[$1] += $7 + $8 + $9 }
    END {
        for (t in execs)
            printf "| %s | %d | %d | %d | %d | %d | %d | %d | %s |\n", t, execs[t], secs[t], execs[t] / (secs[t] ? secs[t] : 1),
                cov[t], ft[t], corp[t], bad[t], (execs[t] >= 1000000 ? "yes" : "no")
    }' | sort
