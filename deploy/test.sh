#!/usr/bin/env bash
# Lint, type-check and run every test (unit and integration) as root. CI calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> lint"
npm run lint --silent
echo "==> type-check tests"
npx tsc -p tsconfig.test.json
echo "==> tests"
npx vitest run
