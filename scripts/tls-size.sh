#!/bin/sh
# tls-size.sh: the flash cost of TLS on a Cortex-M3 (-Os, Thumb-2): mbedTLS objects, port/tls*.c, and a gc-sections link.
#
#   scripts/tls-size.sh MBEDTLS_DIR LWIP_DIR "library/a.c library/b.c ..." "hash sources"
#
# Prints the object totals, then the code a linker keeps when the TLS API and
# the hashes are the roots (with the hashes alone for comparison); lwIP and libc
# symbols are left unresolved, since the firmware has them anyway.
set -eu
mbed=$1 lwip=$2 srcs=$3 hashes=$4
command -v arm-none-eabi-gcc >/dev/null || { echo "tls-size: needs gcc-arm-none-eabi: apt-get install gcc-arm-none-eabi" >&2; exit 1; }
out=build/tls-size
rm -rf "$out" && mkdir -p "$out/obj" "$out/board"
printf '/* board_opts.h: board defaults for the size check */\n#ifndef TLS_SIZE_BOARD_OPTS_H\n#define TLS_SIZE_BOARD_OPTS_H\n#endif\n' > "$out/board/board_opts.h"
cflags="-std=c11 -mcpu=cortex-m3 -mthumb -Os -ffunction-sections -fdata-sections -Isrc -Iport -Iport/include -Iport/mbedtls \
  -I$out/board -I$lwip/src/include -I$mbed/include -DMBEDTLS_CONFIG_FILE=\"postern_mbedtls_config.h\" -DPOSTERN_TLS=1"
for f in $srcs; do arm-none-eabi-gcc $cflags -w -c "$mbed/$f" -o "$out/obj/$(basename "$f" .c).o"; done
for f in port/tls.c port/tls_keyupdate.c port/arena.c; do
  # port/tls_keyupdate.c reads mbedTLS's library-internal headers.
  extra=$([ "$f" = port/tls_keyupdate.c ] && echo "-I$mbed/library" || true)
  arm-none-eabi-gcc $cflags $extra -Wall -Wextra -Wshadow -Wundef -Werror -c "$f" -o "$out/$(basename "$f" .c).o"
done
echo "== Cortex-M3 -Os objects (text data bss)"
arm-none-eabi-size -t "$out"/obj/*.o | tail -1 | awk '{print "mbedTLS, " NF " files: " $1 " " $2 " " $3}' | sed "s/, [0-9]* files/ ($(echo $srcs | wc -w) files)/"
arm-none-eabi-size "$out/tls.o" "$out/tls_keyupdate.o" "$out/arena.o" | tail -3 | awk '{print $6 ": " $1 " " $2 " " $3}'
link() { # out roots... objects come from $objs
  name=$1; shift
  arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb -nostdlib -nostartfiles -Wl,--gc-sections -Wl,--unresolved-symbols=ignore-all \
    "$@" $objs -o "$out/$name.elf"
  arm-none-eabi-size "$out/$name.elf" | tail -1 | awk -v n="$name" '{print n ": text " $1 ", data " $2 ", bss " $3}'
}
echo "== linked with --gc-sections"
objs="$out/tls.o $out/tls_keyupdate.o $out/arena.o $out/obj/*.o"
link tls+hashes -Wl,-e,tls_server_init -Wl,-u,tls_allocator -Wl,-u,tls_get_facts -Wl,-u,tls_get_stats \
  -Wl,-u,mbedtls_sha256 -Wl,-u,mbedtls_md_hmac -Wl,-u,mbedtls_base64_encode -Wl,-u,mbedtls_base64_decode
objs=""
for f in $hashes; do objs="$objs $out/obj/$(basename "$f" .c).o"; done
link hashes-only -Wl,-e,mbedtls_sha256 -Wl,-u,mbedtls_md_hmac -Wl,-u,mbedtls_base64_encode -Wl,-u,mbedtls_base64_decode
