#!/usr/bin/env bash
# Stops the private Docker engine that `MCPW_DOCKER_ROOT=DIR scripts/provision-docker.sh` started in
# DIR and removes every trace of it: its containers (the engine stops them on shutdown), its
# mounts, its bridge and the directory itself. Safe to run when the engine never started.
#
# Usage: bash scripts/stop-docker.sh DIR
set -uo pipefail

ROOT_DIR="${1:?usage: stop-docker.sh DIR}"
[[ -d "$ROOT_DIR" ]] || exit 0
ROOT_DIR="$(cd "$ROOT_DIR" && pwd -P)"
log() { printf 'stop-docker: %s\n' "$*" >&2; }

pid="$(cat "$ROOT_DIR/docker.pid" 2>/dev/null || true)"
if [[ -S "$ROOT_DIR/docker.sock" ]]; then
  ids="$(DOCKER_HOST="unix://$ROOT_DIR/docker.sock" timeout 20 docker ps -aq 2>/dev/null || true)"
  if [[ -n "$ids" ]]; then
    log "removing $(wc -w <<<"$ids") container(s)"
    # shellcheck disable=SC2086 # one id per word
    DOCKER_HOST="unix://$ROOT_DIR/docker.sock" timeout 60 docker rm -f $ids >/dev/null 2>&1 || true
  fi
fi
if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
  log "stopping dockerd (pid $pid)"
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "dockerd did not stop within 30 s: killing it"
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
  fi
fi
# The engine's own containerd and shims run in their own process groups: anything still running
# from this root is ended by the paths it holds open.
for proc in /proc/[0-9]*; do
  exe_args="$(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null || true)"
  [[ "$exe_args" == *"$ROOT_DIR/"* ]] && kill -KILL "${proc#/proc/}" 2>/dev/null
done
# Mounts below the root (overlay layers, netns, shm), deepest first.
awk -v root="$ROOT_DIR/" 'index($5, root) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
  while read -r mount; do umount -l "$mount" 2>/dev/null || log "could not unmount $mount"; done
bridge="$(cat "$ROOT_DIR/bridge" 2>/dev/null || true)"
if [[ -n "$bridge" ]] && ip link show "$bridge" >/dev/null 2>&1; then
  ip link del "$bridge" || log "could not delete the bridge $bridge"
fi
rm -rf "$ROOT_DIR" || log "could not remove $ROOT_DIR"
log "removed $ROOT_DIR"
