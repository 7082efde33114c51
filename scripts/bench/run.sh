#!/usr/bin/env bash
# `deno task bench`: dost's benchmark (see bench.ts). Extra arguments go to bench.ts
# (--quick for a smoke run, --only=throughput,conns,idle,udp,chain).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# 5,000 idle tunnels need ~10,000 fds in the proxy: raise the soft limit as far as allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 12000 ]; then
  echo "bench: warning: open-file limit is $(ulimit -n); the idle-tunnel rows may fail" >&2
fi

for cmd in iperf3 proxychains4 microsocks danted; do
  command -v "$cmd" >/dev/null 2>&1 || echo "bench: $cmd not found (bash scripts/setup-peers.sh installs it)" >&2
done

exec deno run -A scripts/bench/bench.ts "$@"
