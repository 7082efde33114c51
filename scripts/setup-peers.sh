#!/usr/bin/env bash
# Installs the Debian packages that dost's interop tests and benchmarks talk to (idempotent).
#
#   bash scripts/setup-peers.sh
#
# As root with apt-get: installs what is missing (apt-get update only when something is missing)
# and prints one summary line; exits non-zero only when apt-get install itself fails.
# Otherwise: prints one line per missing package naming what will be skipped, and exits 0.
set -uo pipefail

# package:command it provides (what tests look for with needs()/have())
PEERS=(
  curl:curl
  iperf3:iperf3
  microsocks:microsocks
  dante-server:danted
  socat:socat
  ncat:ncat
  openssl:openssl
  procps:ps
  proxychains4:proxychains4
  haproxy:haproxy
  dnsmasq-base:dnsmasq
  bind9-dnsutils:dig
  redis-server:redis-server
  squid:squid
  shadowsocks-libev:ss-server
  v2ray:v2ray
  knot-dnsutils:kdig
)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

present() { # pkg cmd
  if command -v dpkg-query >/dev/null 2>&1; then
    installed "$1" && return 0
  fi
  command -v "$2" >/dev/null 2>&1
}

# What is skipped without `cmd`: the test files that ask for it, and the bench if it uses it.
skipped_by() {
  local cmd="$1" files
  files=$(grep -rlE --include='*_test.ts' "(needs|have)\([^)]*[\"']$cmd[\"']" \
    "$ROOT/tests" "$ROOT/src" 2>/dev/null | sed "s|^$ROOT/||" | sort -u | tr '\n' ' ')
  if grep -qs -- "$cmd" "$ROOT"/scripts/bench/*.ts "$ROOT"/scripts/bench/*.sh 2>/dev/null; then
    files="${files}bench rows"
  fi
  echo "${files:-no current test}"
}

missing_pkgs=()
missing_cmds=()
for pc in "${PEERS[@]}"; do
  pkg="${pc%%:*}" cmd="${pc##*:}"
  if ! present "$pkg" "$cmd"; then
    missing_pkgs+=("$pkg")
    missing_cmds+=("$cmd")
  fi
done

if [ "${#missing_pkgs[@]}" -eq 0 ]; then
  echo "setup-peers: all ${#PEERS[@]} peer packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  why="not root"
  [ "$(id -u)" -eq 0 ] && why="no apt-get"
  for i in "${!missing_pkgs[@]}"; do
    echo "setup-peers: missing ${missing_pkgs[$i]} ($why, not installing): skips $(skipped_by "${missing_cmds[$i]}")"
  done
  exit 0
fi

log="$(mktemp "${TMPDIR:-/tmp}/setup-peers.XXXXXX.log")"
export DEBIAN_FRONTEND=noninteractive
# Keep package maintainer scripts from starting daemons (danted would take port 1080).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
cleanup() { [ "$made_policy" = 1 ] && rm -f "$policy"; rm -f "$log"; }
trap cleanup EXIT

APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
if ! apt-get "${APT_OPTS[@]}" update -qq >>"$log" 2>&1; then
  echo "setup-peers: warning: apt-get update failed, trying the install anyway" >&2
fi
if ! apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing_pkgs[@]}" \
  >>"$log" 2>&1; then
  echo "setup-peers: apt-get install ${missing_pkgs[*]} failed:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
echo "setup-peers: installed ${missing_pkgs[*]} (all ${#PEERS[@]} peer packages present)"
