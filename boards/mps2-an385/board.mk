# board.mk: the mps2-an385 board: Arm MPS2+ AN385 (Cortex-M3) firmware, run under qemu-system-arm.
#
#   make BOARD=mps2-an385 [SET="token=T capacity=3M"] [FLASH_TIMING=instant|nor|slow] [POLICY=scripts/policy.lua] [VARIANT=name]
#        [CERT=server.crt KEY=server.key [CLIENT_CA=ca.crt [CLIENT_CERT=optional|required]]] [TLS=0]
#
# Settings, the policy and the HTTPS credentials are baked into the image
# (scripts/bake.sh). Each VARIANT shares every object; only its baked file and
# its link differ: build/mps2-an385/<variant>/postern.elf. CERT and KEY default
# to the development certificates of `make certs`, made first when missing.
CC := arm-none-eabi-gcc
AR := arm-none-eabi-ar
SIZE := arm-none-eabi-size
NM := arm-none-eabi-nm
VARIANT ?= default
SET ?=
# The emulated flash's timing (flash_model.h): instant (default), nor or slow;
# baked like a setting (SET's flash_timing=), so it is one more variant.
FLASH_TIMING ?=
MPS2_SET := $(strip $(SET) $(if $(FLASH_TIMING),flash_timing=$(FLASH_TIMING)))
POLICY ?= scripts/policy.lua
HTTP_PORT ?= 8080
HTTPS_PORT ?= 8443
ECHO_PORT ?= 8007
DISCARD_PORT ?= 8009
GDB_PORT ?= 1234
CERT ?= $(CERTS_DIR)/server.crt
KEY ?= $(CERTS_DIR)/server.key
CLIENT_CA ?=
CLIENT_CERT ?= optional

BOARD_TARGET := $(VARIANT)/postern.elf
BOARD_TOOLS := qemu-system-arm:qemu-system-arm arm-none-eabi-gcc:gcc-arm-none-eabi \
               /usr/lib/arm-none-eabi/newlib/thumb/v7-m/nofp/libc_nano.a:libnewlib-arm-none-eabi
MPS2_ARCH := -mcpu=cortex-m3 -mthumb
BOARD_CFLAGS := $(MPS2_ARCH) -Os -g -fno-strict-aliasing -ffunction-sections -fdata-sections
BOARD_OWN_CFLAGS :=
BOARD_SRCS := $(wildcard boards/mps2-an385/*.c)

MPS2_VARIANT_DIR := $(OUT)/$(VARIANT)
MPS2_LDSCRIPT := boards/mps2-an385/mps2_an385.ld
BOARD_EXTRA_OBJS := $(MPS2_VARIANT_DIR)/baked.o
# newlib-nano for string and formatting functions; no start files, no
# system calls but the few in syscalls.c (no _sbrk: nothing may call malloc).
BOARD_LINK = $(CC) $(MPS2_ARCH) --specs=nano.specs -nostartfiles -T $(MPS2_LDSCRIPT) -Wl,--gc-sections \
  -Wl,-Map=$(MPS2_VARIANT_DIR)/postern.map -Wl,--cref -o $@ $(filter %.o,$^) -lm
BOARD_RUN = scripts/qemu-run.sh $(OUT)/$(BOARD_TARGET) $(HTTP_PORT) $(HTTPS_PORT) $(ECHO_PORT) $(DISCARD_PORT)
BOARD_DEBUG = scripts/qemu-run.sh --debug $(GDB_PORT) $(OUT)/$(BOARD_TARGET) $(HTTP_PORT) $(HTTPS_PORT) \
  $(ECHO_PORT) $(DISCARD_PORT)
BOARD_SIZE = scripts/size-report.sh $(OUT)/$(BOARD_TARGET) $(MPS2_VARIANT_DIR)/postern.map

# TLS credentials baked with TLS=1; the development ones come from `make certs`.
MPS2_TLS_FILES := $(if $(filter 1,$(TLS)),$(CERT) $(KEY) $(CLIENT_CA))
MPS2_BAKE_TLS := $(if $(filter 1,$(TLS)),'$(CERT)' '$(KEY)' '$(CLIENT_CA)' '$(CLIENT_CERT)')
MPS2_NEEDS_CERTS := $(if $(filter $(CERTS_DIR)/%,$(MPS2_TLS_FILES)),certs)

# The baked settings change with SET, POLICY, VARIANT and the credentials
# (their paths and contents): a stamp holds them, rewritten only when they
# differ, so the image relinks exactly then.
.PHONY: mps2-bake-check
$(MPS2_VARIANT_DIR)/bake.stamp: mps2-bake-check | $(MPS2_NEEDS_CERTS)
	@mkdir -p $(@D)
	@{ printf '%s\n' 'variant=$(VARIANT)' 'policy=$(POLICY)' 'set=$(MPS2_SET)' 'tls=$(MPS2_BAKE_TLS)'; \
	  $(if $(MPS2_TLS_FILES),cksum $(MPS2_TLS_FILES) 2>&1 || true;) } > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv $@.new $@; fi
$(MPS2_VARIANT_DIR)/baked.c: $(MPS2_VARIANT_DIR)/bake.stamp $(POLICY) scripts/bake.sh
	@echo "  BAKE    $@ ($(POLICY)$(if $(MPS2_SET), SET=$(MPS2_SET))$(if $(MPS2_TLS_FILES), TLS: $(MPS2_TLS_FILES)))"
	@scripts/bake.sh '$(VARIANT)' '$(POLICY)' '$(MPS2_SET)' $(MPS2_BAKE_TLS) > $@.tmp && mv $@.tmp $@
$(MPS2_VARIANT_DIR)/baked.o: $(MPS2_VARIANT_DIR)/baked.c
	@echo "  CC      $<"
	@$(CC) $(OWN_CFLAGS) -c $< -o $@
$(OUT)/$(BOARD_TARGET): $(MPS2_LDSCRIPT)
-include $(MPS2_VARIANT_DIR)/baked.d
