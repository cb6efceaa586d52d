#!/bin/sh
# Container entrypoint: what picket-enforce.service and picket.service do on a host, in order.
# 1. `picket enforce` puts the last good policy (or the baseline) in the kernel and exits.
# 2. The agent replaces this shell (exec: it is PID 1's child no more, signals reach it).
# A failed enforce does not stop the agent: the agent enforces again before it opens the
# network, keeps retrying and raises apply-failed, which a one-shot command cannot do.
set -eu
config="${PICKET_CONFIG:-/etc/picket/agent.yaml}"
if ! picket enforce --config "$config"; then
  echo "picket-entrypoint: picket enforce failed; starting the agent, which retries and alerts" >&2
fi
exec picket agent --config "$config" "$@"
