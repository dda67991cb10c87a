#!/bin/sh
# run.sh — `make bench`: runs every benchmarks/<area>/run.sh (each writes its markdown section to
# benchmarks/out/<area>.md) and assembles benchmarks/RESULTS.md with the date and machine.
# Usage: benchmarks/run.sh [AREA...]   (default: every area); --assemble only rebuilds RESULTS.md
cd "$(dirname "$0")/.." || exit 2
mkdir -p benchmarks/out
areas="$*"
[ "$areas" = "--assemble" ] && areas="none"
[ -n "$areas" ] || areas=$(for d in benchmarks/*/run.sh; do basename "$(dirname "$d")"; done)
for area in $areas; do
    [ "$area" = out ] || [ "$area" = none ] && continue
    echo "== benchmark: $area"
    sh "benchmarks/$area/run.sh" || echo "benchmark $area failed" >&2
done
{
    echo "# clipc benchmark results"
    echo
    echo "Each section is written by \`benchmarks/<area>/run.sh\` (run all with \`make bench\`); the section"
    echo "header gives the date, machine and command of its last run."
    for f in benchmarks/out/*.md; do
        [ -e "$f" ] || continue
        echo
        cat "$f"
    done
} > benchmarks/RESULTS.md.tmp && mv benchmarks/RESULTS.md.tmp benchmarks/RESULTS.md
echo "wrote benchmarks/RESULTS.md"
