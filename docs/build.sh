#!/usr/bin/env bash
# Build the docs site: install docs/requirements.txt into the current Python environment, then
# `mkdocs build --strict` (every warning is an error) into site/, or into the folder given as $1.
# Run it in the environment where piecewise's dependencies are installed (the command-line page is generated
# from piecewise's own parser; the API reference is read from the source, nothing else is imported).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r docs/requirements.txt
export NO_MKDOCS_2_WARNING=1  # mkdocs-material's banner about MkDocs 2 (not a warning of this build)
start=$(date +%s)
python -m mkdocs build --strict --site-dir "${1:-site}"
echo "docs: built $(find "${1:-site}" -name index.html | wc -l) pages into ${1:-site} in $(( $(date +%s) - start )) s"
