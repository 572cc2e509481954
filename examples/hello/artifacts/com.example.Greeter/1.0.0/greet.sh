#!/bin/sh
# Prints "<greeting>, <names>" with the names from a JSON list in the configuration.
names=$(printf '%s' "$2" | tr -d '[]"' | sed 's/,/, /g')
echo "$1, ${names}! HelloWorld is running next to me."
