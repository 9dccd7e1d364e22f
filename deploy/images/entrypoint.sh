#!/bin/sh
# The images' entrypoint, run by tini (PID 1). Without arguments it starts the image's service,
# `python -m smoltbot_$SMOLTBOT_SERVICE`; with arguments it runs them (`smoltbot migrate`, ...).
#
# Event key: when SMOLTBOT_EVENT_KEY is empty, it is read from SMOLTBOT_EVENT_KEY_FILE (default
# /run/smoltbot/keys/event.key, where compose's event-key step writes one), so bodies on the bus
# are encrypted by default. A key file named explicitly must exist; the default one may not.
set -eu

default_key_file=/run/smoltbot/keys/event.key
key_file="${SMOLTBOT_EVENT_KEY_FILE:-$default_key_file}"
if [ -z "${SMOLTBOT_EVENT_KEY:-}" ]; then
  if [ -r "$key_file" ] && [ -s "$key_file" ]; then
    SMOLTBOT_EVENT_KEY="$(tr -d ' \n\r\t' < "$key_file")"
    export SMOLTBOT_EVENT_KEY
  elif [ "$key_file" != "$default_key_file" ]; then
    echo "smoltbot-entrypoint: SMOLTBOT_EVENT_KEY_FILE=$key_file is missing, empty or unreadable" >&2
    exit 2
  fi
fi

if [ "$#" -eq 0 ]; then
  set -- python -m "smoltbot_${SMOLTBOT_SERVICE:?SMOLTBOT_SERVICE is not set}"
fi
exec "$@"
