#!/usr/bin/env bash
# Create .venv and install the pinned requirements (idempotent).
#   bash scripts/bootstrap.sh          runtime requirements
#   bash scripts/bootstrap.sh --dev    plus what the tests need
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    # Debian's python3 ships venv/ensurepip separately
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    fi
    "$PYTHON" -m venv .venv
  fi
fi
files=(requirements.txt)
if [ "${1:-}" = --dev ]; then files+=(requirements-dev.txt); fi
stamp=.venv/.installed-$(cat "${files[@]}" | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  for f in "${files[@]}"; do .venv/bin/python -m pip install -q -r "$f"; done
  touch "$stamp"
fi
