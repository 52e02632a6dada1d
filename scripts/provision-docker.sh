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
# Progress goes to stderr; the last line of stdout is `DOCKER_HOST=<address>`, to export.
# Needs root on Debian 12 when something must be installed or started.
set -euo pipefail

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
  log "built $TEST_IMAGE"
fi

echo "# run: export DOCKER_HOST=$HOST"
echo "DOCKER_HOST=$HOST"
