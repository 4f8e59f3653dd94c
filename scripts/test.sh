#!/usr/bin/env bash
# The test suite (fast + slow tests that fit CI's budget). Starts nothing itself: live tests
# start their own JACK dummy server.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 -m pytest -q -p no:cacheprovider "$@"
