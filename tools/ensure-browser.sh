#!/usr/bin/env bash
# The browser tests drive a real Chromium through chromedriver: Debian's packages. Install them
# when missing and we may (root with apt-get); otherwise say what is needed. The tests fail
# (never skip) without them.
set -u
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium and chromium-driver (Debian packages) for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
    && exit 0
fi
echo "warning: chromium and chromedriver are missing; install Debian's chromium chromium-driver" >&2
exit 0
