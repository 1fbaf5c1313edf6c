#!/usr/bin/env bash
# Failover of an active/standby relay pair under keepalived: runs the namespace tests
# tests/netns/standby_test.ts (two relays, VRRP, a 10 kpps stream; the active relay's process
# killed, and keepalived stopped on the active relay) REPEAT times for each VRRP advertisement
# interval, and prints each run's figures as the tests report them: the receiver's longest gap,
# datagrams lost, duplicates, reordered; for the kill the time until the survivor took the role,
# for the planned switch-over how long the two relays' roles overlapped (negative: a gap).
#
#   bash bench/failover.sh [REPEAT] [ADVERT_S ...]     # as root; default: 5 runs, 0.1 and 1 s
#   STRESS=1 bash bench/failover.sh ...                # with stress-ng --cpu 2 beside it
set -euo pipefail
cd "$(dirname "$0")/.."
repeat="${1:-5}"
shift || true
adverts=("$@")
((${#adverts[@]})) || adverts=(0.1 1)
bash scripts/build.sh >/dev/null
stress_pid=""
if [[ "${STRESS:-}" == 1 ]]; then
  setsid stress-ng --cpu 2 --timeout 60m --quiet &
  stress_pid=$!
  trap 'kill -TERM -- "-$stress_pid" 2>/dev/null || true' EXIT
fi
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) load $(cut -d' ' -f1-3 /proc/loadavg)" \
  "stress ${STRESS:-0}"
for a in "${adverts[@]}"; do
  for ((i = 1; i <= repeat; i++)); do
    MCR_TEST_VRRP_ADVERT_S="$a" MCR_TEST_PREFIX="mcrfo$$" npx -y deno@2.9.6 test --allow-all \
      tests/netns/standby_test.ts 2>&1 | grep -E "^failover|^planned|FAILED" || true
  done
done
