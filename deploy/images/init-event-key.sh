#!/bin/sh
# One-shot (compose's `event-key` service): write a new event key to SMOLTBOT_EVENT_KEY_FILE
# (default /run/smoltbot/keys/event.key, a volume the services mount) unless SMOLTBOT_EVENT_KEY
# is given or the file already holds a key. The key is base64 of 32 random bytes, file mode 0600.
set -eu

key_file="${SMOLTBOT_EVENT_KEY_FILE:-/run/smoltbot/keys/event.key}"
if [ -n "${SMOLTBOT_EVENT_KEY:-}" ]; then
  echo "event key: SMOLTBOT_EVENT_KEY is set; $key_file is not used"
  exit 0
fi
if [ -s "$key_file" ]; then
  echo "event key: keeping the key in $key_file"
  exit 0
fi
umask 077
python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())' > "$key_file.new"
mv "$key_file.new" "$key_file"
echo "event key: wrote a new key to $key_file"
