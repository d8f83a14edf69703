#!/usr/bin/env bash
# Installs the Helm CLI into ./bin/helm when it is absent, by building it with the Go toolchain
# (the Go module proxy is the only download this needs), and prints its path. The first build
# takes about three minutes on two cores; the Go build cache makes later builds take seconds, and
# a bin/helm of the right version is reused as is.
#
#   bash scripts/helm.sh                          # → /path/to/repo/bin/helm
#   HELM_VERSION=v3.21.4 bash scripts/helm.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
bin="$PWD/bin"
helm="$bin/helm"

# `helm version` of a `go install` build cannot be trusted for the patch number, so ask the
# binary's module information instead.
installed() {
	go version -m "$helm" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" { print $3 }'
}
if [[ -x "$helm" && "$(installed)" == "$HELM_VERSION" ]]; then
	echo "$helm"
	exit 0
fi

# Helm's release builds stamp the Kubernetes version their client libraries target (it is the
# cluster version `helm template` and `helm lint` assume); without it Helm assumes v1.20 and
# rejects charts that need newer APIs. Read it from Helm's go.mod (k8s.io/client-go v0.N.x → 1.N).
gomod=$(go mod download -json "helm.sh/helm/v3@${HELM_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
k8s_minor=$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' "$gomod")
if [[ -z "$k8s_minor" ]]; then
	echo "helm.sh: cannot find k8s.io/client-go in $gomod" >&2
	exit 1
fi

mkdir -p "$bin"
start=$(date +%s)
ldflags="-s -w"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
	ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${k8s_minor}"
done
# GOFLAGS=-mod=mod: `go install pkg@version` builds with Helm's own module graph and refuses a
# -mod=vendor inherited from the environment.
GOBIN="$bin" GOFLAGS=-mod=mod CGO_ENABLED=0 go install -trimpath -ldflags="$ldflags" \
	"helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
echo "helm.sh: built helm ${HELM_VERSION} (Kubernetes 1.${k8s_minor}) in $(( $(date +%s) - start ))s" >&2
echo "$helm"
