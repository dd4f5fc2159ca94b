#!/usr/bin/env bash
# The test command (`npm test`): obtains every component (cached after the first run), type-checks, then
# runs unit and integration tests in one node:test run against a freshly started local stack. Test files run
# one at a time: several start an operator, and two operators would both reconcile every VaultSecret.
#   VSYNC_VAULT_FLAVOR=openbao|vault   which server the stack starts (default openbao)
#   KUBECONFIG / VAULT_ADDR+VAULT_TOKEN / VSYNC_PG_*   use your own cluster, Vault, PostgreSQL instead
#   extra arguments are test files or globs, e.g. npm test -- test/unit/*.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."

flavor=${VSYNC_VAULT_FLAVOR:-openbao}
components=(node postgres helm etcd kube "$flavor")
bash scripts/components.sh ensure "${components[@]}"
eval "$(bash scripts/components.sh env)"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
echo "[test] node $(node --version), vault flavor: $flavor"
npx tsc --noEmit

if [ $# -gt 0 ]; then files=("$@"); else files=('test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'); fi
exec node scripts/stack.ts run -- node --test --test-reporter=spec --test-concurrency="${VSYNC_TEST_CONCURRENCY:-1}" \
  --test-timeout="${VSYNC_TEST_TIMEOUT_MS:-600000}" "${files[@]}"
