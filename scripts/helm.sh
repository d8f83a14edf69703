#!/usr/bin/env bash
# Installs the Helm CLI into ./bin/helm and prints its path. Helm is built once per version with
# the Go toolchain (the Go module proxy is the only download this needs) into a cache shared by
# every checkout, $PHOENIX_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/phoenix)/helm-<version>/;
# later installs copy it from there in well under a second. The one build takes about three
# minutes on two cores; it prints one line, and its whole log only when it fails.
#
#   bash scripts/helm.sh                          # → /path/to/repo/bin/helm
#   HELM_VERSION=v3.21.4 bash scripts/helm.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
bin="$PWD/bin"
helm="$bin/helm"
cache="${PHOENIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/phoenix}/helm-${HELM_VERSION}"
cached="$cache/helm"

# version_of FILE: the Helm module version FILE was built from. (`helm version` of a
# `go install` build cannot be trusted for the patch number; the module information can.)
version_of() {
	go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" { print $3 }'
}
# install: bin/helm from the cache (a hard link when both are on one file system).
install() {
	mkdir -p "$bin"
	rm -f "$helm"
	ln "$cached" "$helm" 2>/dev/null || cp "$cached" "$helm"
	echo "$helm"
}

if [[ -x "$helm" && "$(version_of "$helm")" == "$HELM_VERSION" ]]; then
	echo "$helm"
	exit 0
fi
mkdir -p "$cache"
# One build per version even when several checkouts ask at once: the others wait for it.
exec 9>"$cache/.lock"
flock 9
if [[ -x "$cached" && "$(version_of "$cached")" == "$HELM_VERSION" ]]; then
	install
	exit 0
fi

# build: helm into the cache, its output into the log (set -e does not apply inside a
# condition, hence the explicit returns).
build() {
	# Helm's release builds stamp the Kubernetes version their client libraries target (it is
	# the cluster version `helm template` and `helm lint` assume); without it Helm assumes v1.20
	# and rejects charts that need newer APIs. Read it from Helm's go.mod (k8s.io/client-go
	# v0.N.x → 1.N).
	local info gomod ldflags pkg
	if ! info=$(go mod download -json "helm.sh/helm/v3@${HELM_VERSION}"); then
		echo "$info"
		return 1
	fi
	gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$info")
	k8s_minor=$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' "$gomod") || return 1
	if [[ -z "$k8s_minor" ]]; then
		echo "cannot find k8s.io/client-go in $gomod"
		return 1
	fi
	ldflags="-s -w"
	ldflags+=" -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
	for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
		ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${k8s_minor}"
	done
	# GOFLAGS=-mod=mod: `go install pkg@version` builds with Helm's own module graph and refuses
	# a -mod=vendor inherited from the environment. The binary lands in a scratch directory and
	# moves into the cache whole, so an interrupted build never leaves a broken one there.
	rm -rf "$cache/build"
	GOBIN="$cache/build" GOFLAGS=-mod=mod CGO_ENABLED=0 go install -trimpath -ldflags="$ldflags" \
		"helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" || return 1
	mv "$cache/build/helm" "$cached" && rmdir "$cache/build"
}

log="$cache/build.log"
echo "helm.sh: building helm ${HELM_VERSION} once into $cache (about 3 minutes; log: $log)" >&2
start=$(date +%s)
k8s_minor=""
if ! build >"$log" 2>&1; then
	echo "helm.sh: building helm ${HELM_VERSION} failed:" >&2
	cat "$log" >&2
	exit 1
fi
echo "helm.sh: built helm ${HELM_VERSION} (Kubernetes 1.${k8s_minor}) in $(($(date +%s) - start))s" >&2
install
