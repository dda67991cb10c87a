#!/bin/sh
# docs_cli.sh — every command listed by `clipc --help` has a section in docs/CLI.md, and every option
# its `--help` prints is documented there (regenerate with scripts/gen-cli-doc.py).
set -eu
doc="$CLIPC_SRC/docs/CLI.md"
"$CLIPC" --help | sed -n '/^commands:/,/^$/p' | sed '1d;/^$/d' | while read -r first second rest; do
    case "$first" in index) cmd="$first $second" ;; *) cmd="$first" ;; esac
    grep -q "^## clipc $cmd\$" "$doc" || { echo "docs/CLI.md has no section for clipc $cmd"; exit 1; }
    # options of this command, and the section of the doc that belongs to it
    section=$(awk -v h="## clipc $cmd" '$0 == h { on = 1; next } /^## clipc / { on = 0 } on' "$doc")
    "$CLIPC" $cmd --help | sed -n 's/^  \(--[a-z0-9-]*\).*/\1/p' | while read -r opt; do
        printf '%s\n' "$section" | grep -q -- "\`$opt[ \`]" || { echo "clipc $cmd $opt is not documented in docs/CLI.md"; exit 1; }
    done
done
# and the top-level help names every command
test "$("$CLIPC" --help | sed -n '/^commands:/,/^$/p' | sed '1d;/^$/d' | wc -l)" -ge 19
