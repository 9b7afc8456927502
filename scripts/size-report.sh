#!/bin/sh
# size-report.sh: flash and RAM of a firmware image (mps2-an385, lm3s6965evb) by section and by component, from its linker map, against the budgets.
#
# usage: scripts/size-report.sh ELF MAP
#   Budgets (the product's figures to reach): flash (text + rodata + data) <= 192 KiB
#   without TLS, <= 320 KiB with; RAM (data + bss + stack; the firmware has no
#   heap, its pools and arenas are static) <= 128 KiB. IPv6 (IPV6=1) may add at
#   most 20 KiB of flash and 4 KiB of RAM; the README (IPv6) has both builds.
#   BOARD=lm3s6965evb: the part's own memories, flash <= 256 KiB, RAM <= 64 KiB.
set -eu

elf=${1:?usage: size-report.sh ELF MAP}
map=${2:?usage: size-report.sh ELF MAP}
size=${SIZE:-arm-none-eabi-size}
board=${BOARD:-mps2-an385}

echo "== $elf: sections"
"$size" -A "$elf" | awk '$1 ~ /^\.(text|ARM\.exidx|data|bss|stack|medium)$/ { printf "  %-12s %8d bytes  %7.1f KiB\n", $1, $2, $2 / 1024 }'

# Input sections of the memory map, summed per component and kind. The map
# writes a long section name alone on a line and its address, size and file
# on the next one.
section() { "$size" -A "$elf" | awk -v s="$1" '$1 == s { print $2 }'; }
stack=$(section .stack)
flash=$(($(section .text) + $(section .ARM.exidx) + $(section .data)))
ram=$(($(section .data) + $(section .bss) + stack))
awk -v board="$board" -v stack="${stack:-0}" -v flash="$flash" -v ram="$ram" -v tls="$(grep -c 'ssl_tls\|altcp_tls' "$map" || true)" \
  -v ipv6="$(grep -c 'ipv6/nd6\.o' "$map" || true)" '
function component(file) {
  if (file ~ /\/page\/page_gz\.o$/) return "upload page (src/page.html, gzip)"
  if (file ~ /\/obj\/src\//) return "postern core (src/)"
  if (file ~ /\/obj\/port\//) return "port/"
  if (file ~ /\/obj\/boards\// || file ~ /baked\.o$/) return "board (boards/" board ", baked)"
  if (file ~ /\/lwip\//) return "lwIP"
  if (file ~ /\/lua\//) return "Lua"
  if (file ~ /\/mbedtls\//) return "mbedTLS"
  if (file ~ /libc_nano|libm\.a|libgcc|libc\.a/) return "libc, libm, libgcc"
  return "other (alignment, linker)"
}
function kind(sec) {
  if (sec ~ /^\.rodata/) return "rodata"
  if (sec ~ /^\.text/ || sec ~ /^\.ARM\.exidx/ || sec ~ /^\.glue/) return "text"
  if (sec ~ /^\.data/) return "data"
  if (sec ~ /^\.bss/ || sec == "COMMON") return "bss"
  return ""
}
function add(sec, hexsize, file,   k, c, n) {
  k = kind(sec)
  if (k == "" || out == "") return
  if (out == ".text" && k != "text" && k != "rodata") k = "rodata"
  n = hex2num(hexsize)
  if (n == 0) return
  c = component(file)
  sum[c, k] += n
  comps[c] = 1
}
function hex2num(h,   i, d, v) {
  v = 0
  h = tolower(h)
  sub(/^0x/, "", h)
  for (i = 1; i <= length(h); i++) { d = index("0123456789abcdef", substr(h, i, 1)) - 1; v = v * 16 + d }
  return v
}
/^Linker script and memory map/ { inmap = 1; next }
!inmap { next }
/^\.text / || /^\.text$/ { out = ".text"; next }
/^\.data / || /^\.data$/ { out = ".data"; next }
/^\.bss / || /^\.bss$/ { out = ".bss"; next }
/^\.ARM\.exidx/ { out = ".text"; next }
/^\.[a-zA-Z]/ { out = ""; next }
/^ [.A-Z][^ ]*$/ { pending = $1; next }
pending != "" && /^ +0x[0-9a-f]+ +0x[0-9a-f]+ / { add(pending, $2, $3); pending = ""; next }
{ pending = "" }
/^ [.A-Z][^ ]* +0x[0-9a-f]+ +0x[0-9a-f]+ / { add($1, $3, $4) }
/^ \*fill\* +0x[0-9a-f]+ +0x[0-9a-f]+/ { k = out == ".text" ? "text" : out == ".data" ? "data" : out == ".bss" ? "bss" : ""; if (k != "") { sum["other (alignment, linker)", k] += hex2num($3); comps["other (alignment, linker)"] = 1 } }
END {
  printf "\n== by component (bytes)\n"
  printf "  %-34s %8s %8s %8s %8s | %8s %8s\n", "component", "text", "rodata", "data", "bss", "flash", "RAM"
  order = "postern core (src/);upload page (src/page.html, gzip);port/;board (boards/" board ", baked);lwIP;Lua;mbedTLS;libc, libm, libgcc;other (alignment, linker)"
  n = split(order, names, ";")
  for (i = 1; i <= n; i++) {
    c = names[i]
    if (!(c in comps)) continue
    t = sum[c, "text"]; r = sum[c, "rodata"]; d = sum[c, "data"]; b = sum[c, "bss"]
    printf "  %-34s %8d %8d %8d %8d | %8d %8d\n", c, t, r, d, b, t + r + d, d + b
    T += t; R += r; D += d; B += b
  }
  printf "  %-34s %8d %8d %8d %8d | %8d %8d\n", "total", T, R, D, B, T + R + D, D + B
  printf "  (the map counts string constants before the linker merges duplicates;\n"
  printf "   the budget lines below use the image itself)\n"
  budget = tls > 0 ? 320 : 192
  ram_budget = 128
  if (board == "lm3s6965evb") { budget = 256; ram_budget = 64 }
  printf "\n== budgets (%s TLS, %s)\n", (tls > 0 ? "with" : "without"), (ipv6 > 0 ? "dual stack: IPV6=1" : "IPv4 only: IPV6=0")
  printf "  flash (text + rodata + data)  %7.1f KiB of %d KiB (%s TLS)  %s\n", flash / 1024, budget, (tls > 0 ? "with" : "without"), (flash <= budget * 1024 ? "OK" : "OVER")
  printf "  RAM (data + bss + %d stack)    %7.1f KiB of %d KiB  %s\n", stack, ram / 1024, ram_budget, (ram <= ram_budget * 1024 ? "OK" : "OVER")
}' "$map"
echo "  No heap: lwIP's heap (MEM_SIZE), its pools and the Lua arena are static (in bss above);"
echo "  their high-water marks are in GET /_status."
