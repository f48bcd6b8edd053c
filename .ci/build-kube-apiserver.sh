#!/usr/bin/env bash
# Build (once) a kube-apiserver binary from Debian bookworm's `kubernetes`
# source package and install the apt packages the e2e control plane needs.
#
# Idempotent: a second run only checks the packages and prints the cached path.
# The LAST line of stdout is the absolute path of the cached binary.
# Before it, stdout has only a "build time: N s" line after a build; apt and go
# output go to stderr.
#
# Environment:
#   INQUEST_CACHE_DIR   cache directory (default: ~/.cache/inquest)
#   INQUEST_BUILD_DIR   where sources are unpacked (default: $INQUEST_CACHE_DIR/build)
#   INQUEST_KEEP_BUILD  1 = keep the sources and Go build cache after a build
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
CACHE_DIR="${INQUEST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inquest}"
BUILD_ROOT="${INQUEST_BUILD_DIR:-$CACHE_DIR/build}"
SRC_LIST=/etc/apt/sources.list.d/inquest-deb-src.sources

log() { echo "[build-kube-apiserver] $*" >&2; }

# One build at a time per cache directory (e.g. CI step + pytest fallback).
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.build.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.build.lock; waiting"
  flock -w 3600 9 || { log "timed out waiting for the build lock"; exit 1; }
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    log "not root and no sudo: cannot install apt packages"; fi
fi

# --- apt: deb-src entry ------------------------------------------------------
need_update=0
if [ ! -f "$SRC_LIST" ]; then
  mirror=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    [ "$f" = "$SRC_LIST" ] && continue
    # First URIs: line that serves the plain "bookworm" suite.
    mirror=$(awk '
      /^[[:space:]]*$/ { if (u != "" && s ~ /(^| )bookworm( |$)/) { print u; exit } u=""; s=""; next }
      /^URIs:/ { u=$2 }
      /^Suites:/ { $1=""; s=$0" " }
      END { if (u != "" && s ~ /(^| )bookworm( |$)/) print u }' "$f" | head -n1)
    [ -n "$mirror" ] && break
  done
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list || true)
    # skip an optional [options] field
    [ -z "$mirror" ] && mirror=$(awk '$1=="deb" && $2 ~ /^\[/ && $4=="bookworm" {print $3; exit}' /etc/apt/sources.list || true)
  fi
  mirror="${mirror:-http://deb.debian.org/debian}"
  log "adding deb-src entry for $mirror bookworm main"
  $SUDO tee "$SRC_LIST" >/dev/null <<SRC
Types: deb-src
URIs: $mirror
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
fi

# --- apt: binary packages ------------------------------------------------------
PKGS=(etcd-server golang-go golang-github-modern-go-reflect2-dev dpkg-dev golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ] || [ "$need_update" = 1 ]; then
  log "apt-get update"
  $SUDO apt-get update -q >&2
fi
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2
fi

# etcd-server's postinst may start a system etcd on :2379; we never use it
# (the tests run their own on free ports), so stop it if we can.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  $SUDO systemctl stop etcd >&2 || true
fi

# --- source version --------------------------------------------------------------
version=$(apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -n1)
if [ -z "$version" ]; then
  log "apt-get update (no source index for kubernetes yet)"
  $SUDO apt-get update -q >&2
  version=$(apt-cache showsrc kubernetes | awk '/^Version:/ {print $2}' | sort -V | tail -n1)
fi
[ -n "$version" ] || { log "cannot find the kubernetes source package"; exit 1; }
safe_version=$(printf '%s' "$version" | tr ':~+/' '____')
# Bump BUILD_TAG whenever the patches applied to the sources below change: a binary cached by an
# older revision of this script is then rebuilt (tests/e2e/controlplane.py reads this line too).
BUILD_TAG=p2
OUT="$CACHE_DIR/kube-apiserver-$safe_version-$BUILD_TAG"

if [ -x "$OUT" ] && "$OUT" --version >/dev/null 2>&1; then
  log "cached: $OUT ($("$OUT" --version))"
  echo "$OUT"
  exit 0
fi

# --- fetch + unpack ------------------------------------------------------------------
start=$(date +%s)
mkdir -p "$CACHE_DIR" "$BUILD_ROOT"
SRC_DIR="$BUILD_ROOT/src-$safe_version"
if [ ! -f "$SRC_DIR/.unpacked" ]; then
  rm -rf "$SRC_DIR"
  mkdir -p "$SRC_DIR/dl" "$SRC_DIR/tree"
  log "downloading source package kubernetes=$version"
  (cd "$SRC_DIR/dl" && apt-get source --download-only -q "kubernetes=$version" </dev/null >&2)
  orig=$(ls "$SRC_DIR"/dl/kubernetes_*.orig.tar.* 2>/dev/null | head -n1)
  [ -n "$orig" ] || { log "no .orig tarball downloaded"; ls -la "$SRC_DIR/dl" >&2; exit 1; }
  log "unpacking $(basename "$orig")"
  tar -xf "$orig" -C "$SRC_DIR/tree" --strip-components=1
  [ -d "$SRC_DIR/tree/cmd/kube-apiserver" ] || { log "cmd/kube-apiserver missing in the tarball"; exit 1; }
  [ -d "$SRC_DIR/tree/vendor" ] || { log "vendor/ missing in the tarball"; exit 1; }
  # reflect2 v1.0.1 SIGSEGVs under Go >= 1.18 (mapiterinit); use Debian's v1.0.2.
  R2=/usr/share/gocode/src/github.com/modern-go/reflect2
  [ -d "$R2" ] || { log "$R2 missing"; exit 1; }
  rm -rf "$SRC_DIR/tree/vendor/github.com/modern-go/reflect2"
  mkdir -p "$SRC_DIR/tree/vendor/github.com/modern-go/reflect2"
  cp -rL "$R2"/. "$SRC_DIR/tree/vendor/github.com/modern-go/reflect2/"
  rm -f "$SRC_DIR/dl"/*.tar.* 2>/dev/null || true
  touch "$SRC_DIR/.unpacked"
fi

# go-openapi's type validator (vendored) tests "is null" with
#   data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data))
# Under Go >= 1.19 an empty string and reflect.Zero(string) share runtime.zeroVal, so "" counts as
# null and every custom resource with an empty string field is refused ("Invalid value: \"null\":
# ... must be of type string"). kube-openapi later fixed it to `data == nil`; apply that fix.
zero_check='data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data))'
patched=0
while IFS= read -r -d '' f; do
  if grep -qF "$zero_check" "$f"; then
    sed -i 's/data == nil || reflect\.DeepEqual(reflect\.Zero(reflect\.TypeOf(data)), reflect\.ValueOf(data))/data == nil/' "$f"
    log "patched the null check in ${f#"$SRC_DIR/tree/"}"
    patched=$((patched + 1))
  fi
done < <(find "$SRC_DIR/tree/vendor" "$SRC_DIR/tree/staging" -name type.go -path '*validate*' -print0 2>/dev/null)
if [ "$patched" = 0 ] && ! grep -rqsF --include=type.go 'if data == nil {' "$SRC_DIR/tree/vendor"; then
  log "the go-openapi null check to patch was not found"; exit 1
fi

# --- build (GOPATH mode) ---------------------------------------------------------------
GOPATH_DIR="$BUILD_ROOT/gopath"
mkdir -p "$GOPATH_DIR/src/k8s.io"
ln -sfn "$SRC_DIR/tree" "$GOPATH_DIR/src/k8s.io/kubernetes"
export GOPATH="$GOPATH_DIR" GO111MODULE=off CGO_ENABLED=0
export GOCACHE="${GOCACHE:-$BUILD_ROOT/gocache}"
export GOFLAGS=""
log "go: $(go version)"
TREE="$GOPATH_DIR/src/k8s.io/kubernetes"

# pkg/generated/openapi/zz_generated.openapi.go is generated at build time
# upstream (make gen_openapi) and is not in the tarball: generate it the same
# way (same input packages as build/root/Makefile.generated_files).
OPENAPI_OUT="$SRC_DIR/tree/pkg/generated/openapi/zz_generated.openapi.go"
if [ ! -s "$OPENAPI_OUT" ]; then
  log "generating $OPENAPI_OUT"
  (cd "$TREE" && go build -o "$BUILD_ROOT/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen >&2)
  dirs=$(cd "$TREE" && \
    find -H . -not \( \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \) \
         -type f -name '*.go' -print0 \
    | xargs -0 grep -l '^// *+k8s:' \
    | xargs grep -l '+k8s:openapi-gen=' \
    | sed 's|^\./||; s|^staging/src/|vendor/|' \
    | xargs -n1 dirname \
    | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' \
    | LC_ALL=C sort -u)
  [ -n "$dirs" ] || { log "no +k8s:openapi-gen packages found"; exit 1; }
  inputs=$(printf '%s\n' "$dirs" | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
  (cd "$TREE" && "$BUILD_ROOT/openapi-gen" --logtostderr \
      -i "$inputs" \
      -p k8s.io/kubernetes/pkg/generated/openapi \
      -O zz_generated.openapi \
      -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
      -r "$BUILD_ROOT/openapi-violations.report" >&2)
  [ -s "$OPENAPI_OUT" ] || { log "openapi-gen did not write $OPENAPI_OUT"; exit 1; }
fi

log "building kube-apiserver (takes ~7-12 min on 2 cores)"
# Debian version e.g. "1.20.5+really1.20.2-1.1+deb12u1": the upstream source is 1.20.2.
upstream=$(printf '%s' "$version" | sed -E 's/^[0-9]+://; s/.*really//')
gitversion="v$(printf '%s' "$upstream" | sed -E 's/^([0-9]+\.[0-9]+\.[0-9]+).*/\1/')"
# Same -X flags as hack/lib/version.sh (both version packages are served:
# component-base for --version, client-go for the /version endpoint).
major=$(echo "$gitversion" | sed -E 's/^v([0-9]+)\..*/\1/')
minor=$(echo "$gitversion" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')
ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version \
           k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$gitversion -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
(cd "$TREE" && \
  go build -trimpath -ldflags "$ldflags" -o "$OUT.tmp" ./cmd/kube-apiserver >&2)
mv -f "$OUT.tmp" "$OUT"
if [ "${INQUEST_KEEP_BUILD:-0}" != 1 ]; then
  # ~1.5 GB of sources and Go build cache; only the binary is needed.
  chmod -R u+w "$BUILD_ROOT" 2>/dev/null || true
  rm -rf "$BUILD_ROOT"
fi
end=$(date +%s)
log "built $OUT in $((end - start)) s ($("$OUT" --version))"
echo "build time: $((end - start)) s"
echo "$OUT"
