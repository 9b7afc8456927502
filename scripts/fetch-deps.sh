#!/bin/sh
# fetch-deps.sh: fetches lwIP, mbedTLS and Lua from Debian trixie source packages into build/deps.
#
# A private sources list and lists directory under build/apt keep the
# machine's own apt configuration untouched. Debian's patches are applied by
# dpkg-source; the upstream versions are checked. Running it again once the
# trees are in place does nothing.
#
# usage: scripts/fetch-deps.sh DEPS_DIR lwip=DIR mbedtls=DIR lua=DIR
#   A DIR equal to DEPS_DIR/NAME is fetched when missing; any other DIR is an
#   upstream tree given by the user (LWIP_DIR, ...) and is only checked.
set -eu

deps_dir=${1:?usage: fetch-deps.sh DEPS_DIR lwip=DIR mbedtls=DIR lua=DIR}
shift
apt_dir=$(dirname "$deps_dir")/apt
suite=trixie
mirror=http://deb.debian.org/debian

# name:debian-source-package:expected-upstream-version
packages="lwip:lwip:2.2.1 mbedtls:mbedtls:3.6.6 lua:lua5.4:5.4.7"

die() { echo "fetch-deps: $*" >&2; exit 1; }

version_of() { # name dir -> upstream version found in the tree
  case $1 in
  lwip)
    h=$2/src/include/lwip/init.h
    [ -f "$h" ] || return 0
    maj=$(sed -n 's/^#define LWIP_VERSION_MAJOR *\([0-9]*\).*/\1/p' "$h")
    min=$(sed -n 's/^#define LWIP_VERSION_MINOR *\([0-9]*\).*/\1/p' "$h")
    rev=$(sed -n 's/^#define LWIP_VERSION_REVISION *\([0-9]*\).*/\1/p' "$h")
    echo "$maj.$min.$rev" ;;
  mbedtls)
    h=$2/include/mbedtls/build_info.h
    [ -f "$h" ] || return 0
    sed -n 's/^#define MBEDTLS_VERSION_STRING *"\([0-9.]*\)".*/\1/p' "$h" ;;
  lua)
    h=$2/src/lua.h
    [ -f "$h" ] || return 0
    maj=$(sed -n 's/^#define LUA_VERSION_MAJOR[^"]*"\([0-9]*\)".*/\1/p' "$h")
    min=$(sed -n 's/^#define LUA_VERSION_MINOR[^"]*"\([0-9]*\)".*/\1/p' "$h")
    rel=$(sed -n 's/^#define LUA_VERSION_RELEASE[^"]*"\([0-9]*\)".*/\1/p' "$h")
    echo "$maj.$min.$rel" ;;
  esac
}

check() { # name dir expected
  found=$(version_of "$1" "$2")
  [ "$found" = "$3" ] ||
    die "$1 in $2 is version '${found:-unknown}', postern needs $3 (remove $2 and run again)"
}

dir_of() { # name -> the directory given for it on the command line
  for arg in $given; do
    [ "${arg%%=*}" = "$1" ] && { echo "${arg#*=}"; return; }
  done
  echo "$deps_dir/$1"
}

given="$*"
missing=""
for p in $packages; do
  name=${p%%:*}
  dir=$(dir_of "$name")
  if [ "$dir" != "$deps_dir/$name" ]; then
    [ -d "$dir" ] || die "$name: $dir is not a directory"
    check "$name" "$dir" "${p##*:}"
  elif [ -d "$dir" ]; then
    check "$name" "$dir" "${p##*:}"
  else
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

command -v apt-get >/dev/null 2>&1 ||
  die "apt-get not found: set LWIP_DIR, MBEDTLS_DIR and LUA_DIR to upstream trees instead"
command -v dpkg-source >/dev/null 2>&1 ||
  die "dpkg-source not found: apt-get install dpkg-dev"

mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/src" "$deps_dir"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || die "$keyring not found: apt-get install debian-archive-keyring"
echo "deb-src [signed-by=$keyring] $mirror $suite main" >"$apt_dir/sources.list"
apt_opts="-o Dir::Etc::SourceList=$(realpath "$apt_dir")/sources.list
  -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists=$(realpath "$apt_dir")/lists
  -o Dir::Cache=$(realpath "$apt_dir")/cache
  -o Dir::State::status=/dev/null
  -o APT::Sandbox::User=root"

echo "fetch-deps: updating the private source list for Debian $suite"
# shellcheck disable=SC2086
apt-get -q $apt_opts update >"$apt_dir/update.log" 2>&1 ||
  die "apt-get update failed, see $apt_dir/update.log"

for p in $missing; do
  name=${p%%:*}
  rest=${p#*:}
  srcpkg=${rest%%:*}
  want=${rest##*:}
  echo "fetch-deps: apt-get source $srcpkg ($suite)"
  (cd "$apt_dir/src" && rm -rf "$srcpkg"-* &&
    # shellcheck disable=SC2086
    apt-get -q $apt_opts source "$srcpkg" >"../source-$srcpkg.log" 2>&1) ||
    die "apt-get source $srcpkg failed, see $apt_dir/source-$srcpkg.log"
  tree=$(find "$apt_dir/src" -mindepth 1 -maxdepth 1 -type d -name "$srcpkg-*" | head -n 1)
  [ -n "$tree" ] || die "no unpacked tree for $srcpkg in $apt_dir/src"
  check "$name" "$tree" "$want"
  mv "$tree" "$deps_dir/$name"
  echo "fetch-deps: $name $want ready in $deps_dir/$name"
done
