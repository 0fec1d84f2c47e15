#!/usr/bin/env bash
# Peers the tests drive for real, from Debian's packages: Chromium through chromedriver (the
# browser tests), Apache with mod_auth_openidc (a relying party nobody here wrote), wrk (the
# benchmarks' load generator, which their smoke tests run) and HAProxy (the balancer in front of
# two provider nodes in the fault tests). Install
# what is missing when we may (root with apt-get); otherwise say what is needed. The tests fail
# (never skip) without them.
set -u
packages=()
command -v chromium >/dev/null || packages+=(chromium)
command -v chromedriver >/dev/null || packages+=(chromium-driver)
command -v apache2 >/dev/null || [ -x /usr/sbin/apache2 ] || packages+=(apache2)
[ -f /usr/lib/apache2/modules/mod_auth_openidc.so ] || packages+=(libapache2-mod-auth-openidc)
command -v wrk >/dev/null || packages+=(wrk)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || packages+=(haproxy)
if [ ${#packages[@]} = 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${packages[*]} (Debian packages) for the browser and relying-party tests"
  # Installed for the tests to start on their own ports: no service starts at install time.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
  status=$?
  [ "$made_policy" = 1 ] && rm -f "$policy"
  [ "$status" = 0 ] && exit 0
fi
echo "warning: missing ${packages[*]}; install these Debian packages" >&2
exit 0
