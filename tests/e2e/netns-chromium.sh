#!/bin/sh
# Chromium inside the named network namespace $CONFAB_NETNS: the executable that
# shaping.mjs (launchBrowserInNamespace) gives playwright. Playwright talks to it over a pipe,
# which `ip netns exec` passes on.
set -e
: "${CONFAB_NETNS:?CONFAB_NETNS names the network namespace}"
exec ip netns exec "$CONFAB_NETNS" "${CONFAB_NETNS_CHROMIUM:-/usr/bin/chromium}" "$@"
