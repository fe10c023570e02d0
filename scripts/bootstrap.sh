#!/usr/bin/env bash
# Installs the system packages vecshard needs on Debian/Ubuntu, only those that are missing.
#   scripts/bootstrap.sh          build + test dependencies
#   scripts/bootstrap.sh --bench  also the benchmark tools (h2load, nghttpd)
set -euo pipefail

# etcd-server: tests of the topology store start a real etcd on 127.0.0.1 (issue #18).
packages=(libnghttp2-dev libssl-dev zlib1g-dev pkg-config curl openssl ca-certificates python3 python3-pip etcd-server)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(nghttp2-client nghttp2-server)
fi

# Python packages the tests use (grpcio, grpcio-tools: protobuf/gRPC interoperability checks).
# pip returns quickly when every pinned requirement is already satisfied.
install_python_packages() {
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    -r "$(dirname "$0")/requirements-test.txt" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check -r "$(dirname "$0")/requirements-test.txt"
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  install_python_packages
  exit 0
fi

echo "bootstrap: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "bootstrap: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_python_packages
