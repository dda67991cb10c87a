#!/bin/sh
# demo.sh — the `make demo` job (synthetic data -> train -> index -> search). Not yet written.
echo "clipc demo: not yet — the demo lands with the demo issue; run 'make test' meanwhile."
