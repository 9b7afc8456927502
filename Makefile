# Makefile: builds postern for BOARD (host by default) with lwIP, mbedTLS and Lua from source; runs and tests it.
#
#   make                 build the firmware or simulator for BOARD
#   make run             build, then start the simulated device (ARGS='...' passes options)
#   make debug           start the device halted for a debugger (boards that have one)
#   make size            flash and RAM by section and component against the budgets (firmware boards)
#   make test            unit tests (ASan/UBSan) and end-to-end tests; ends with a summary line
#   make fuzz            runs every libFuzzer target for FUZZ_TIME seconds (default 60; fuzz_conn: FUZZ_CONN_RUNS inputs, 1 million)
#   make bench           every figure against its budget: footprint, RAM, decision cost, throughput (not in make test)
#   make e2e-asan        the end-to-end suite against a simulator built with ASan and UBSan
#   make e2e-tsan        the RTOS-mode subset of the suite against a NO_SYS=0 simulator built with TSan
#   make certs           development certificates under build/certs (make run and make test use them)
#   make tls-size        flash cost of TLS on a Cortex-M3 (-Os): mbedTLS objects and port/tls.c
#   make format          every C file in the style of .clang-format (make test checks it)
#   make lib             build/<board>/libpostern.a and build/<board>/include/: postern for a firmware's own build
#   make clean           remove build/<board>; make distclean removes build/ (fetched sources too)
#
# LWIP_DIR, MBEDTLS_DIR and LUA_DIR point the build at upstream trees instead
# of the Debian source packages fetched into build/deps.

BOARD ?= host
BUILD := build
# 1: HTTPS (mbedTLS's TLS and port/tls.c); 0: plain HTTP only, for flash figures without TLS.
TLS ?= 1
# 1: lwIP's NO_SYS main loop; 0: an RTOS (tcpip_thread), the host board's threads over lwIP's pthread port.
NO_SYS ?= 1
# 1: dual stack, IPv4 and IPv6 (SLAAC); 0: IPv4 only. Each board's default fits its budgets
# (README, IPv6): the host always; mps2-an385 with TLS, not in the 192 KiB of a TLS=0 image;
# lm3s6965evb never (its 64 KiB of SRAM).
IPV6_DEFAULT_host := 1
IPV6_DEFAULT_mps2-an385 := $(if $(filter 1,$(TLS)),1,0)
IPV6_DEFAULT_lm3s6965evb := 0
IPV6_DEFAULT := $(or $(IPV6_DEFAULT_$(BOARD)),1)
IPV6 ?= $(IPV6_DEFAULT)
# 1: a bench build (POSTERN_BENCH): the board counts its busy instructions and times each decision
# for `make bench` (tests/bench/figures.py); its own objects, never a product image.
BENCH ?= 0
# A build without TLS, with IPV6 off its board's default, with NO_SYS 0 or BENCH 1, keeps its own objects (the options differ).
OUT := $(BUILD)/$(BOARD)$(if $(filter 0,$(TLS)),-notls)$(if $(filter-out $(IPV6_DEFAULT),$(IPV6)),$(if $(filter 1,$(IPV6)),-ipv6,-noipv6))$(if $(filter 0,$(NO_SYS)),-nosys0)$(if $(filter 1,$(BENCH)),-bench)
DEPS_DIR := $(BUILD)/deps
LWIP_DIR ?= $(DEPS_DIR)/lwip
MBEDTLS_DIR ?= $(DEPS_DIR)/mbedtls
LUA_DIR ?= $(DEPS_DIR)/lua
# Development CA, server and client certificates (make certs; never committed).
CERTS_DIR := $(BUILD)/certs

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SUFFIXES:

# ---- Host tools ------------------------------------------------------------
# CHECK:PACKAGE pairs; scripts/need-tools.sh installs what is missing (as root
# with apt) or prints the apt-get command to run.
TOOLS := gcc:gcc make:make dpkg-source:dpkg-dev /usr/share/keyrings/debian-archive-keyring.gpg:debian-archive-keyring \
         bzip2:bzip2 xz:xz-utils pkg-config:pkg-config curl:curl openssl:openssl
TEST_TOOLS := /usr/bin/python3:python3 /usr/lib/python3/dist-packages/pytest:python3-pytest clang:clang \
              /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.asan-x86_64.a:libclang-rt-14-dev \
              go:golang-go node:nodejs /usr/lib/python3/dist-packages/aiohttp:python3-aiohttp chromium:chromium clang-format:clang-format \
              luacheck:lua-check

include boards/$(BOARD)/board.mk
ifeq ($(NO_SYS),0)
ifneq ($(BOARD_NO_SYS0),1)
$(error NO_SYS=0 needs a board with an RTOS build (BOARD_NO_SYS0 in its board.mk): the host has one, $(BOARD) not)
endif
endif

# ---- Sources -------------------------------------------------------------
LWIP_SRCS := $(addprefix src/core/,init.c def.c inet_chksum.c ip.c mem.c memp.c netif.c pbuf.c stats.c sys.c \
               altcp.c altcp_alloc.c altcp_tcp.c tcp.c tcp_in.c tcp_out.c timeouts.c udp.c) \
             $(addprefix src/core/ipv4/,etharp.c icmp.c ip4.c ip4_addr.c ip4_frag.c) \
             $(if $(filter 1,$(IPV6)),$(addprefix src/core/ipv6/,ethip6.c icmp6.c ip6.c ip6_addr.c mld6.c nd6.c)) \
             src/netif/ethernet.c $(if $(filter 0,$(NO_SYS)),src/api/tcpip.c) $(BOARD_LWIP_SRCS)
# TLS=0 builds without HTTPS: only the hashes of mbedTLS, and no port/tls*.c.
MBEDTLS_HASH_SRCS := $(addprefix library/,sha256.c md.c base64.c platform_util.c constant_time.c)
MBEDTLS_TLS_SRCS := $(addprefix library/,platform.c entropy.c ctr_drbg.c aes.c gcm.c chacha20.c \
                  poly1305.c chachapoly.c cipher.c cipher_wrap.c bignum.c bignum_core.c ecp.c ecp_curves.c \
                  ecdh.c ecdsa.c asn1parse.c asn1write.c oid.c pk.c pk_ecc.c pk_wrap.c pkparse.c pem.c x509.c \
                  x509_crt.c psa_crypto.c psa_crypto_aead.c psa_crypto_cipher.c psa_crypto_client.c \
                  psa_crypto_driver_wrappers_no_static.c psa_crypto_ecp.c psa_crypto_hash.c psa_crypto_mac.c psa_crypto_random.c \
                  psa_crypto_slot_management.c psa_util.c ssl_ciphersuites.c ssl_msg.c ssl_tls.c \
                  ssl_tls12_server.c ssl_tls13_generic.c ssl_tls13_keys.c ssl_tls13_server.c)
MBEDTLS_SRCS := $(MBEDTLS_HASH_SRCS) $(if $(filter 1,$(TLS)),$(MBEDTLS_TLS_SRCS))
LUA_SRCS := $(addprefix src/,lapi.c lcode.c lctype.c ldebug.c ldo.c lfunc.c lgc.c llex.c lmem.c \
              lobject.c lopcodes.c lparser.c lstate.c lstring.c ltable.c ltm.c lvm.c lzio.c \
              lauxlib.c lbaselib.c lstrlib.c ltablib.c lutf8lib.c)
CORE_SRCS := $(wildcard src/*.c)
PORT_SRCS := $(filter-out $(if $(filter 1,$(TLS)),,port/tls.c port/tls_keyupdate.c),$(wildcard port/*.c))

INCLUDES := -Isrc -Iport -Iport/include -Iport/mbedtls -Iboards/$(BOARD) -I$(LWIP_DIR)/src/include \
            -I$(MBEDTLS_DIR)/include -I$(LUA_DIR)/src -Iport/lua $(BOARD_INCLUDES)
DEFINES_BASE := -DMBEDTLS_CONFIG_FILE='"postern_mbedtls_config.h"'
DEFINES := $(DEFINES_BASE) -DPOSTERN_TLS=$(TLS) -DPOSTERN_IPV6=$(IPV6) $(if $(filter 0,$(NO_SYS)),-DNO_SYS=0) $(if $(filter 1,$(BENCH)),-DPOSTERN_BENCH=1)
WARNINGS := -Wall -Wextra -Wshadow -Wundef -Werror
BASE_CFLAGS := -std=c11 -MMD -MP $(BOARD_CFLAGS) $(INCLUDES) $(DEFINES)
# postern's own code: strict, the same flags on every board.
OWN_CFLAGS := $(BASE_CFLAGS) $(WARNINGS)
# Dependencies keep their own warnings to themselves.
DEP_CFLAGS := $(BASE_CFLAGS) -w
LUA_CFLAGS := $(DEP_CFLAGS) -include port/lua/luaconf_postern.h

LWIP_OBJS := $(LWIP_SRCS:%.c=$(OUT)/lwip/%.o)
MBEDTLS_OBJS := $(MBEDTLS_SRCS:%.c=$(OUT)/mbedtls/%.o)
LUA_OBJS := $(LUA_SRCS:%.c=$(OUT)/lua/%.o)
# The upload page (GET /): src/page.html, gzip-compressed into a C array (scripts/page-gz.sh), one
# object of its own so that make size shows its flash cost.
PAGE_C := $(BUILD)/page/page_gz.c
PAGE_OBJ := $(OUT)/page/page_gz.o
OWN_OBJS := $(CORE_SRCS:%.c=$(OUT)/obj/%.o) $(PAGE_OBJ) $(PORT_SRCS:%.c=$(OUT)/obj/%.o) $(BOARD_SRCS:%.c=$(OUT)/obj/%.o)
ALL_OBJS := $(OWN_OBJS) $(LWIP_OBJS) $(MBEDTLS_OBJS) $(LUA_OBJS)
DEPS_STAMP := $(BUILD)/deps/.checked-$(BOARD)

.PHONY: all tools deps run debug size test unit bench fuzz fuzz-build certs tls-size e2e-asan e2e-tsan cflags lib format clean distclean

all: $(OUT)/$(BOARD_TARGET) $(BOARD_EXTRA_TARGETS)

tools:
	@scripts/need-tools.sh $(TOOLS) $(BOARD_TOOLS)

# One style for the tree (.clang-format); make test checks it (tests/test_format.py).
format:
	@scripts/need-tools.sh clang-format:clang-format
	@clang-format -i $$(git ls-files '*.c' '*.h')

# The flags postern's own files compile with (tests/test_lwip_check.py builds against them).
cflags:
	$(info $(OWN_CFLAGS) $(BOARD_OWN_CFLAGS))
	@:

# Fetches (or checks) the three dependency trees once; later runs do nothing.
$(DEPS_STAMP): scripts/fetch-deps.sh | tools
	@scripts/fetch-deps.sh $(DEPS_DIR) lwip=$(LWIP_DIR) mbedtls=$(MBEDTLS_DIR) lua=$(LUA_DIR)
	@mkdir -p $(@D) && touch $@
deps: $(DEPS_STAMP)
# The dependency sources appear once the fetch has run.
$(addprefix $(LWIP_DIR)/,$(LWIP_SRCS)) $(addprefix $(MBEDTLS_DIR)/,$(MBEDTLS_SRCS)) \
  $(addprefix $(LUA_DIR)/,$(LUA_SRCS)): | $(DEPS_STAMP) ;

# The KeyUpdate code reaches into mbedTLS's transform and key schedule (library-internal headers).
$(OUT)/obj/port/tls_keyupdate.o: OWN_CFLAGS += -I$(MBEDTLS_DIR)/library

$(OUT)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(OWN_CFLAGS) $(BOARD_OWN_CFLAGS) -c $< -o $@

$(PAGE_C): src/page.html scripts/page-gz.sh
	@mkdir -p $(@D)
	@echo "  GZIP    $< -> $@"
	@scripts/page-gz.sh $< > $@.tmp && mv $@.tmp $@
$(PAGE_OBJ): $(PAGE_C)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(OWN_CFLAGS) $(BOARD_OWN_CFLAGS) -c $< -o $@

$(OUT)/lwip/%.o: $(LWIP_DIR)/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      lwip/$*.c"
	@$(CC) $(DEP_CFLAGS) $(BOARD_LWIP_CFLAGS) -c $< -o $@

$(OUT)/mbedtls/%.o: $(MBEDTLS_DIR)/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      mbedtls/$*.c"
	@$(CC) $(DEP_CFLAGS) -c $< -o $@

$(OUT)/lua/%.o: $(LUA_DIR)/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      lua/$*.c"
	@$(CC) $(LUA_CFLAGS) -c $< -o $@

-include $(ALL_OBJS:.o=.d)

$(OUT)/$(BOARD_TARGET): $(ALL_OBJS) $(BOARD_EXTRA_OBJS)
	@echo "  LD      $@"
	@$(BOARD_LINK)

# Rules of a board's extra targets (board.mk: BOARD_LATE_MK), which need the lists above.
include $(BOARD_LATE_MK)

# ---- The library -------------------------------------------------------------
# postern's own code (src/, port/) as one archive, and the headers a firmware
# includes (postern.h and what it includes). lwIP, mbedTLS and Lua are the
# firmware's: LWIP_DIR, MBEDTLS_DIR and LUA_DIR point at their trees, and the
# board's board_opts.h and lwIP options are found on the include path.
LIB_OBJS := $(CORE_SRCS:%.c=$(OUT)/obj/%.o) $(PAGE_OBJ) $(PORT_SRCS:%.c=$(OUT)/obj/%.o)
LIB_HEADERS := src/postern.h src/storage.h src/platform.h src/policy_store.h src/postern_opts.h
lib: $(OUT)/libpostern.a
$(OUT)/libpostern.a: $(LIB_OBJS)
	@echo "  AR      $@"
	@rm -f $@ && $(AR) rcs $@ $^
	@mkdir -p $(OUT)/include && cp $(LIB_HEADERS) $(OUT)/include/
# The simulator linked from the archive (board files, the dependencies, libpostern.a): it stands alone.
$(OUT)/postern-lib: $(BOARD_SRCS:%.c=$(OUT)/obj/%.o) $(LWIP_OBJS) $(MBEDTLS_OBJS) $(LUA_OBJS) $(OUT)/libpostern.a
	@echo "  LD      $@"
	@$(CC) -Wl,--gc-sections -o $@ $(filter %.o,$^) $(OUT)/libpostern.a $(BOARD_LDLIBS)

# ---- Certificates ------------------------------------------------------------
# Development CA, server and client certificates under build/certs (never committed).
certs: | tools
	@scripts/make-certs.sh $(CERTS_DIR)

# Flash cost of TLS on a Cortex-M3 (-Os): mbedTLS objects, port/tls.c, a gc-sections link.
tls-size: | $(DEPS_STAMP)
	@scripts/tls-size.sh $(MBEDTLS_DIR) $(LWIP_DIR) "$(MBEDTLS_HASH_SRCS) $(MBEDTLS_TLS_SRCS)" "$(MBEDTLS_HASH_SRCS)"

# ---- Running ---------------------------------------------------------------
run: all $(BOARD_RUN_DEPS)
	$(BOARD_RUN)

# Boards without a debugger or a size report say so (board.mk: BOARD_DEBUG, BOARD_SIZE).
debug: all
	$(if $(BOARD_DEBUG),$(BOARD_DEBUG),@echo "make debug: not available on board $(BOARD)")

size: all
	$(if $(BOARD_SIZE),$(BOARD_SIZE),@echo "make size: not available on board $(BOARD) (see BOARD=mps2-an385)")

# ---- Tests -----------------------------------------------------------------
include tests/tests.mk

clean:
	rm -rf $(OUT) $(BUILD)/test
distclean:
	rm -rf $(BUILD)
