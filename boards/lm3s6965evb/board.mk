# board.mk: the lm3s6965evb board: TI Stellaris LM3S6965 (Cortex-M3, 64 KiB SRAM) firmware with its files on an SD card, run under qemu-system-arm.
#
#   make BOARD=lm3s6965evb [SET="token=T"] [POLICY=scripts/policy.lua] run
#   make BOARD=lm3s6965evb [CARD=64M] [SET=...] [POLICY=...] [KEEP=1] card
#   make BOARD=lm3s6965evb size | debug
#
# Settings and the policy live on the SD card (scripts/card.py writes them):
# `card` creates or resets build/lm3s6965evb/card.img (CARD= size, a power of
# two; KEEP=1 keeps the files) and writes SET= and POLICY= onto it; `run`
# creates the card when it is missing, writes SET= and POLICY= onto it when
# they are given (the files stay), then boots. The image bakes its fallback:
# BAKED_SET= and BAKED_POLICY= (default: no settings, scripts/policy.lua).
# No TLS on this board (TLS=0 always): see boards/lm3s6965evb/README.md.
CC := arm-none-eabi-gcc
AR := arm-none-eabi-ar
SIZE := arm-none-eabi-size
NM := arm-none-eabi-nm
override TLS := 0
VARIANT ?= default
SET ?=
POLICY ?=
BAKED_SET ?=
BAKED_POLICY ?= scripts/policy.lua
CARD ?= 64M
CARD_IMG ?= $(BUILD)/lm3s6965evb/card.img
KEEP ?=
HTTP_PORT ?= 8080
ECHO_PORT ?= 8007
DISCARD_PORT ?= 8009
GDB_PORT ?= 1234

BOARD_TARGET := $(VARIANT)/postern.elf
BOARD_TOOLS := qemu-system-arm:qemu-system-arm arm-none-eabi-gcc:gcc-arm-none-eabi \
               /usr/lib/arm-none-eabi/newlib/thumb/v7-m/nofp/libc_nano.a:libnewlib-arm-none-eabi
LM3S_ARCH := -mcpu=cortex-m3 -mthumb
BOARD_CFLAGS := $(LM3S_ARCH) -Os -g -fno-strict-aliasing -ffunction-sections -fdata-sections
BOARD_OWN_CFLAGS :=
# baked.h (scripts/bake.sh's interface) lives with the mps2-an385.
BOARD_INCLUDES := -Iboards/mps2-an385
# The board-neutral C library stand-ins of the mps2-an385 (formatting, no heap) serve this board too.
BOARD_SRCS := $(wildcard boards/lm3s6965evb/*.c) boards/mps2-an385/fmt.c boards/mps2-an385/syscalls.c

LM3S_VARIANT_DIR := $(OUT)/$(VARIANT)
LM3S_LDSCRIPT := boards/lm3s6965evb/lm3s6965.ld
BOARD_EXTRA_OBJS := $(LM3S_VARIANT_DIR)/baked.o
BOARD_LINK = $(CC) $(LM3S_ARCH) --specs=nano.specs -nostartfiles -T $(LM3S_LDSCRIPT) -Wl,--gc-sections \
  -Wl,-Map=$(LM3S_VARIANT_DIR)/postern.map -Wl,--cref -o $@ $(filter %.o,$^) -lm
LM3S_CARD_ARGS := $(if $(SET),--set '$(SET)') $(if $(POLICY),--policy '$(POLICY)')
BOARD_RUN_DEPS := lm3s-card-ready
BOARD_RUN = scripts/lm3s-run.sh $(OUT)/$(BOARD_TARGET) $(CARD_IMG) $(HTTP_PORT) $(ECHO_PORT) $(DISCARD_PORT)
BOARD_DEBUG = scripts/lm3s-run.sh --debug $(GDB_PORT) $(OUT)/$(BOARD_TARGET) $(CARD_IMG) $(HTTP_PORT) \
  $(ECHO_PORT) $(DISCARD_PORT)
BOARD_SIZE = BOARD=lm3s6965evb scripts/size-report.sh $(OUT)/$(BOARD_TARGET) $(LM3S_VARIANT_DIR)/postern.map

.PHONY: card lm3s-card-ready lm3s-bake-check
# Creates or resets the card image, then writes the settings and the policy onto it.
card:
	@scripts/card.py $(CARD_IMG) --create $(CARD) $(if $(filter 1,$(KEEP)),,--reset) $(LM3S_CARD_ARGS)
# Before a run (or a debug session): a card exists; SET= and POLICY= reach it (its files stay).
debug: lm3s-card-ready
lm3s-card-ready:
	@scripts/card.py $(CARD_IMG) --create $(CARD) $(LM3S_CARD_ARGS)

# The baked fallback (settings, policy, entropy seed) changes with BAKED_SET, BAKED_POLICY and VARIANT.
$(LM3S_VARIANT_DIR)/bake.stamp: lm3s-bake-check
	@mkdir -p $(@D)
	@printf '%s\n' 'variant=$(VARIANT)' 'policy=$(BAKED_POLICY)' 'set=$(BAKED_SET)' > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv $@.new $@; fi
$(LM3S_VARIANT_DIR)/baked.c: $(LM3S_VARIANT_DIR)/bake.stamp $(BAKED_POLICY) scripts/bake.sh
	@echo "  BAKE    $@ ($(BAKED_POLICY)$(if $(BAKED_SET), SET=$(BAKED_SET)))"
	@scripts/bake.sh '$(VARIANT)' '$(BAKED_POLICY)' '$(BAKED_SET)' > $@.tmp && mv $@.tmp $@
$(LM3S_VARIANT_DIR)/baked.o: $(LM3S_VARIANT_DIR)/baked.c
	@echo "  CC      $<"
	@$(CC) $(OWN_CFLAGS) -c $< -o $@
$(OUT)/$(BOARD_TARGET): $(LM3S_LDSCRIPT)
-include $(LM3S_VARIANT_DIR)/baked.d
