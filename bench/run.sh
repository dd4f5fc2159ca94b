#!/usr/bin/env bash
# The benchmark command (`npm run bench -- [options]`; see bench/run.ts for them). Not part of the tests'
# pass or fail. Obtains the components (cached after the first run) including HashiCorp's Vault Secrets
# Operator, then runs every scenario on fresh local stacks it starts itself: a KUBECONFIG or VAULT_ADDR in
# the environment is ignored, because a shared cluster would measure its other tenants too.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/components.sh ensure node postgres helm etcd kube openbao vso
eval "$(bash scripts/components.sh env)"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# VSO's CRDs come from its module, which building it put in the Go module cache.
vso_version=$(sed -n 's/^VSO_VERSION=\(v[0-9.]*\).*/\1/p' scripts/components.sh)
export VSO_CRD_DIR=${VSO_CRD_DIR:-$(go env GOMODCACHE)/github.com/hashicorp/vault-secrets-operator@$vso_version/chart/crds}
if [ ! -d "$VSO_CRD_DIR" ]; then
  (cd tools/vso && go mod download github.com/hashicorp/vault-secrets-operator)
fi
unset KUBECONFIG VAULT_ADDR VAULT_TOKEN VSYNC_PG_HOST
export VSYNC_VAULT_FLAVOR=openbao
npm run --silent build
exec node bench/run.ts "$@"
