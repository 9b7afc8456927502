# tool.mk: postern-policy, the offline policy tester (boards/host/tool), read by the Makefile after its source lists.
# src/policy.c with the host simulator's limits (its arena, budget and policy size), the instructions
# counted one by one: the budget is the same, the hook and the matcher charge every step.
# It links with BOARD_CFLAGS, so that a sanitized build (make e2e-asan) links its runtime too.
TOOL_DEFS := -DPOSTERN_LUA_HOOK_STEP=1
TOOL_OBJS := $(OUT)/tool/src/policy.o $(OUT)/tool/src/policy_pattern.o $(OUT)/tool/port/lua_arena.o $(OUT)/tool/boards/host/tool/postern_policy.o \
  $(addprefix $(OUT)/obj/,src/text.o src/digest.o src/log.o port/arena.o port/lua_math.o port/lua_nodump.o) \
  $(MBEDTLS_HASH_SRCS:%.c=$(OUT)/mbedtls/%.o) $(LUA_SRCS:%.c=$(OUT)/lua/%.o)
$(OUT)/tool/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $< (postern-policy)"
	@$(CC) $(OWN_CFLAGS) $(TOOL_DEFS) -c $< -o $@
$(OUT)/postern-policy: $(TOOL_OBJS)
	@echo "  LD      $@"
	@$(CC) $(BOARD_CFLAGS) -Wl,--gc-sections -o $@ $^ -lm
-include $(TOOL_OBJS:.o=.d)
$(filter $(OUT)/tool/%,$(TOOL_OBJS)): boards/host/tool/tool.mk
