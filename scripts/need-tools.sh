#!/bin/sh
# need-tools.sh: makes sure host packages are present; installs them as root with apt, else says how.
#
# usage: scripts/need-tools.sh CHECK:PACKAGE ...
#   CHECK is a command name, or an absolute path that must exist.
#   Example: scripts/need-tools.sh gcc:gcc /usr/include/slirp/libslirp.h:libslirp-dev
set -eu

missing=""
for pair in "$@"; do
  check=${pair%%:*}
  pkg=${pair#*:}
  case $check in
  /*) [ -e "$check" ] && continue ;;
  *) command -v "$check" >/dev/null 2>&1 && continue ;;
  esac
  case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "need-tools: installing missing packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -q update >/dev/null || echo "need-tools: apt-get update failed, trying the install anyway" >&2
  # shellcheck disable=SC2086
  apt-get -q install -y --no-install-recommends $missing >/dev/null ||
    { echo "need-tools: apt-get install$missing failed" >&2; exit 1; }
  exit 0
fi

echo "need-tools: missing packages:$missing" >&2
echo "need-tools: run: sudo apt-get install -y$missing" >&2
exit 1
