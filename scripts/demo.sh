#!/usr/bin/env bash
# `npm run demo`: the product on a local stack (no cluster needed). Builds or reuses the components, starts
# the stack, runs scripts/demo.ts against it, and stops everything on Ctrl-C.
# With KUBECONFIG and VAULT_ADDR+VAULT_TOKEN set, your own cluster and Vault are used instead.
set -euo pipefail
cd "$(dirname "$0")/.."
flavor=${VSYNC_VAULT_FLAVOR:-openbao}
bash scripts/components.sh ensure node postgres helm etcd kube "$flavor"
eval "$(bash scripts/components.sh env)"
[ -d node_modules ] || npm ci --no-audit --no-fund
exec node scripts/stack.ts run -- node scripts/demo.ts
