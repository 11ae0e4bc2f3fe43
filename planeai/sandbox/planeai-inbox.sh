#!/bin/sh
# `planeai` inside a sandbox: the container never opens planeai's database, so the command goes
# to the host through the session's inbox (planeai.sandbox.inbox) and its answer comes back.
# The argv travels NUL-separated in a file: no word of it is ever parsed by a shell.
inbox=/run/planeai/inbox
[ -d "$inbox" ] || { echo "planeai: error: no planeai inbox in this container" >&2; exit 1; }
id=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || echo "$$.$(date +%s%N)")
tmp="$inbox/.$id.tmp"
printf '%s\0' "$@" > "$tmp" || exit 1
mv "$tmp" "$inbox/$id.req" || exit 1
waited=0
# The host answers within milliseconds while the session's supervisor runs; give up after
# about two minutes rather than hang an agent forever.
while [ ! -e "$inbox/$id.done" ]; do
  sleep 0.05
  waited=$((waited + 1))
  if [ "$waited" -gt 2400 ]; then
    rm -f "$inbox/$id.req"
    echo "planeai: error: the host did not answer (is the session's supervisor running?)" >&2
    exit 1
  fi
done
cat "$inbox/$id.out" 2>/dev/null
cat "$inbox/$id.err" >&2 2>/dev/null
rc=$(cat "$inbox/$id.done")
rm -f "$inbox/$id.out" "$inbox/$id.err" "$inbox/$id.done"
exit "${rc:-1}"
