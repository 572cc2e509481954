#!/bin/sh
# Greets, then keeps greeting: a long-running component for `component list` to show.
message="$1"
interval="${2:-5}"
while :; do
  echo "Hello, ${message}! (from ${AWS_IOT_THING_NAME:-this device})"
  sleep "$interval"
done
