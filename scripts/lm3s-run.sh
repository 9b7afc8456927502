#!/bin/sh
# lm3s-run.sh: runs a postern lm3s6965evb image under qemu-system-arm with its SD card, console on stdio, forwards on 127.0.0.1 only.
#
# usage: scripts/lm3s-run.sh [--debug GDB_PORT] ELF CARD_IMG|none [HTTP_PORT [ECHO_PORT [DISCARD_PORT]]]
#   CARD_IMG is the SD card's raw image (scripts/card.py makes one; its size a
#   power of two); "none" boots without a card. Forwards 127.0.0.1:HTTP_PORT
#   (8080) to device port 80, ECHO_PORT (8007) to 7 and DISCARD_PORT (8009)
#   to 9; a port of 0 is not forwarded. The device is 10.0.2.15 on QEMU's
#   user-mode network. --debug starts the CPU halted with a gdb server on
#   127.0.0.1:GDB_PORT. Ctrl-A X leaves QEMU.
#   Environment: POSTERN_QEMU_DUMP=FILE captures the link (pcap), POSTERN_QEMU_ARGS adds QEMU options.
set -eu

usage="usage: lm3s-run.sh [--debug GDB_PORT] ELF CARD_IMG|none [HTTP_PORT [ECHO_PORT [DISCARD_PORT]]]"
debug=""
if [ "${1:-}" = "--debug" ]; then
  debug=${2:?$usage}
  shift 2
fi
elf=${1:?$usage}
card=${2:?$usage}
http=${3:-8080}
echo_port=${4:-8007}
discard=${5:-8009}

[ -f "$elf" ] || { echo "lm3s-run: no image $elf (build it with make BOARD=lm3s6965evb)" >&2; exit 1; }

net="user,id=n0,restrict=on,net=10.0.2.0/24,host=10.0.2.2"
for fwd in "$http:80" "$echo_port:7" "$discard:9"; do
  host_port=${fwd%%:*}
  [ "$host_port" = 0 ] && continue
  net="$net,hostfwd=tcp:127.0.0.1:$host_port-:${fwd#*:}"
done

set -- -M lm3s6965evb -nographic -monitor none -serial stdio -kernel "$elf" -netdev "$net" \
  -net nic,model=stellaris,netdev=n0
# POSTERN_QEMU_DUMP=file: every frame of the device's link into a pcap file (tshark reads it).
if [ -n "${POSTERN_QEMU_DUMP:-}" ]; then
  set -- "$@" -object "filter-dump,id=dump0,netdev=n0,file=$POSTERN_QEMU_DUMP"
fi
# POSTERN_QEMU_ARGS: more QEMU options, e.g. "-icount shift=0" (make bench: one virtual ns per instruction).
# shellcheck disable=SC2086
[ -n "${POSTERN_QEMU_ARGS:-}" ] && set -- "$@" $POSTERN_QEMU_ARGS
if [ "$card" != none ]; then
  [ -f "$card" ] || { echo "lm3s-run: no card image $card (make BOARD=lm3s6965evb card)" >&2; exit 1; }
  set -- "$@" -drive "if=sd,file=$card,format=raw"
fi
if [ -n "$debug" ]; then
  gdb=""
  for g in gdb-multiarch arm-none-eabi-gdb gdb; do
    if command -v "$g" >/dev/null 2>&1 && "$g" -batch -ex 'set architecture armv7-m' >/dev/null 2>&1; then
      gdb=$g
      break
    fi
  done
  echo "lm3s-run: halted; gdb server on 127.0.0.1:$debug. Attach with:"
  echo "  ${gdb:-gdb-multiarch} $elf -ex 'target remote 127.0.0.1:$debug'"
  [ -z "$gdb" ] && echo "lm3s-run: no gdb here knows Arm: apt-get install gdb-multiarch"
  set -- "$@" -S -gdb "tcp:127.0.0.1:$debug"
fi
exec qemu-system-arm "$@"
