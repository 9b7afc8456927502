# board.mk: the host simulator board: a Linux process running postern's lwIP stack over libslirp.
CC := gcc
BOARD_TARGET := postern
BOARD_TOOLS := /usr/include/slirp/libslirp.h:libslirp-dev /usr/include/glib-2.0/glib.h:libglib2.0-dev
BOARD_CFLAGS := -O2 -g -fno-strict-aliasing -ffunction-sections -fdata-sections
# The board files speak POSIX (clock_gettime, sigaction, getrandom) and libslirp.
BOARD_OWN_CFLAGS = $(if $(filter boards/host/%,$<),-D_GNU_SOURCE $(shell pkg-config --cflags slirp))
BOARD_LDLIBS = $(shell pkg-config --libs slirp) -lm
BOARD_SRCS := $(wildcard boards/host/*.c)
# HTTPS out of the box: the development certificates of `make certs` (TLS=0: none).
BOARD_RUN_DEPS := $(if $(filter 1,$(TLS)),certs)
BOARD_RUN = $(OUT)/postern --storage $(OUT)/storage $(if $(filter 1,$(TLS)),--cert $(CERTS_DIR)/server.crt \
  --key $(CERTS_DIR)/server.key) $(ARGS)
BOARD_LINK = $(CC) -Wl,--gc-sections -o $@ $^ $(BOARD_LDLIBS)

# postern-policy, the offline policy tester: its rules need the source lists, so the Makefile reads them later.
BOARD_EXTRA_TARGETS := $(OUT)/postern-policy
BOARD_LATE_MK := boards/host/tool/tool.mk
