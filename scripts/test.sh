#!/usr/bin/env bash
# Install everything the tests need (Python packages, Debian's Chromium and redis-server, docker-compose and caddy
# to validate deploy/) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
if ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "scripts/test.sh: Debian's chromium is needed for the UI tests (apt-get install chromium)" >&2
  fi
fi
# the deployment files' own validators (tests/test_deploy.py skips a check whose tool is missing)
if ! command -v docker-compose >/dev/null || ! command -v caddy >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose caddy >/dev/null; } \
      || echo "scripts/test.sh: could not install docker-compose and caddy; their checks are skipped" >&2
  fi
fi
# the suite starts its own private redis-server (tests/support/redis_server.py)
if ! command -v redis-server >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "scripts/test.sh: Debian's redis-server is needed (apt-get install redis-server)" >&2
  fi
fi
exec .venv/bin/python -m pytest -q "$@"
