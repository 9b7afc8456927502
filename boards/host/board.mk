# board.mk: the host simulator board: a Linux process running postern's lwIP stack over libslirp.
CC := gcc
BOARD_TARGET := postern
BOARD_TOOLS := /usr/include/slirp/libslirp.h:libslirp-dev /usr/include/glib-2.0/glib.h:libglib2.0-dev
BOARD_CFLAGS := -O2 -g -fno-strict-aliasing -ffunction-sections -fdata-sections
# The board files speak POSIX (clock_gettime, sigaction, getrandom) and libslirp.
BOARD_OWN_CFLAGS = $(if $(filter boards/host/%,$<),-D_GNU_SOURCE $(shell pkg-config --cflags slirp))
BOARD_LDLIBS = $(shell pkg-config --libs slirp) -lm -pthread
BOARD_SRCS := $(wildcard boards/host/*.c)
# HTTPS out of the box: the development certificates of `make certs` (TLS=0: none).
BOARD_RUN_DEPS := $(if $(filter 1,$(TLS)),certs)
BOARD_RUN = $(OUT)/postern --storage $(OUT)/storage $(if $(filter 1,$(TLS)),--cert $(CERTS_DIR)/server.crt \
  --key $(CERTS_DIR)/server.key) $(ARGS)
BOARD_LINK = $(CC) -Wl,--gc-sections -o $@ $^ $(BOARD_LDLIBS)

# postern-policy, the offline policy tester: its rules need the source lists, so the Makefile reads them later.
BOARD_EXTRA_TARGETS := $(OUT)/postern-policy
BOARD_LATE_MK := boards/host/tool/tool.mk

# ---- RTOS mode (make NO_SYS=0): lwIP's tcpip_thread on lwIP's own pthread port ----
# The host has an RTOS build: tcpip_thread, a slirp thread and a storage thread (rtos_host.c).
BOARD_NO_SYS0 := 1
# lwIP's unix port (contrib/ports/unix/port) gives sys_arch: threads, mailboxes, semaphores, protection.
HOST_SYS_ARCH_DIR := contrib/ports/unix/port
# The calls that may answer STORAGE_PENDING pass through rtos_host.c, which wakes the storage thread.
HOST_RTOS_LDLIBS := -pthread $(foreach f,open write commit remove read,-Wl,--wrap=storage_$(f))
ifeq ($(NO_SYS),0)
BOARD_LWIP_SRCS := $(HOST_SYS_ARCH_DIR)/sys_arch.c
BOARD_INCLUDES := -I$(LWIP_DIR)/$(HOST_SYS_ARCH_DIR)/include
BOARD_LWIP_CFLAGS = $(if $(filter %/sys_arch.c,$<),-D_GNU_SOURCE -DLWIP_UNIX_LINUX -pthread)
BOARD_LDLIBS += $(HOST_RTOS_LDLIBS)
endif
