#!/usr/bin/env bash
# Browser tests of the atlas. Installs what they need (Debian chromium, playwright-core from
# package-lock.json), builds `ruleatlas` unless RULEATLAS_BIN names one, and runs node's test
# runner. Screenshots land in docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd .. && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
  else
    sudo apt-get update -q
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
  fi
fi

if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi

if [ -z "${RULEATLAS_BIN:-}" ]; then
  target="${CARGO_TARGET_DIR:-$repo/target}"
  (cd "$repo" && cargo build --release -p ruleatlas)
  export RULEATLAS_BIN="$target/release/ruleatlas"
fi

node --test --test-reporter=spec atlas.test.mjs
