# tests.mk: unit tests (host, ASan + UBSan) and the end-to-end suite, included by the Makefile.
#
# Each tests/unit/test_NAME.c is one binary; UNIT_NAME lists the sources it
# links besides itself. Everything is rebuilt with the sanitizers under
# build/test, so the firmware objects stay untouched.

TEST_OUT := $(BUILD)/test
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# Unit tests and fuzz targets cover the core without TLS (only the hashes of
# mbedTLS); the TLS layer is exercised end to end by tests/e2e/test_tls.py.
TEST_CFLAGS := -std=c11 -g -O1 -MMD -MP $(SAN_FLAGS) $(INCLUDES) -Itests/unit $(DEFINES_BASE) -DPOSTERN_TLS=0 -DPOSTERN_IPV6=$(IPV6) -D_GNU_SOURCE
LWIP_ALL := $(addprefix $(LWIP_DIR)/,$(LWIP_SRCS))
LUA_ALL := $(addprefix $(LUA_DIR)/,$(LUA_SRCS)) port/lua_nodump.c
MBEDTLS_ALL := $(addprefix $(MBEDTLS_DIR)/,$(MBEDTLS_HASH_SRCS))

UNIT_frameq := port/frameq.c
UNIT_arena := port/arena.c
UNIT_timers := $(LWIP_ALL)
UNIT_tcp := port/ack_now.c port/pool_free.c $(LWIP_ALL)
UNIT_options := boards/host/options.c
UNIT_http_parser := src/http_parser.c src/text.c
UNIT_chunked := src/chunked.c src/text.c
UNIT_multipart := src/multipart.c src/text.c
UNIT_text := src/text.c
UNIT_response := src/http_response.c src/text.c
UNIT_conditional := src/conditional.c src/text.c
UNIT_digest := src/digest.c src/text.c $(MBEDTLS_ALL)
# digest.c on a board's hash engine: the counting fake of tests/unit/engine (its own digest object).
ENGINE_CFLAGS := -DPOSTERN_SHA256_ENGINE=1 -Itests/unit/engine
UNIT_digest_engine := $(TEST_OUT)/engine/src/digest.o src/text.c $(MBEDTLS_ALL)
$(TEST_OUT)/obj/tests/unit/test_digest_engine.o: TEST_CFLAGS += $(ENGINE_CFLAGS)
$(TEST_OUT)/engine/src/digest.o: src/digest.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC/SAN  $< (POSTERN_SHA256_ENGINE=1)"
	@$(CC) $(TEST_CFLAGS) $(ENGINE_CFLAGS) $(WARNINGS) -c $< -o $@
UNIT_policy := src/policy.c src/policy_pattern.c src/text.c src/digest.c port/lua_arena.c port/lua_math.c port/arena.c src/log.c $(LUA_ALL) $(MBEDTLS_ALL) tests/unit/fake_storage.c
UNIT_LDLIBS_policy := -lm
# The sandbox's pattern functions against lstrlib's, in one plain VM.
# Lua's own math library is not in the firmware (the sandbox has port/lua_math.c): only this plain VM has it.
LUA_MATHLIB := $(LUA_DIR)/src/lmathlib.c
$(LUA_MATHLIB): | $(DEPS_STAMP) ;
UNIT_pattern := src/policy_pattern.c $(LUA_ALL) $(LUA_MATHLIB)
UNIT_LDLIBS_pattern := -lm
UNIT_storage_host := boards/host/storage_host.c src/log.c
UNIT_LDLIBS_storage_host := -pthread
# The self-test services over the test's own fake altcp (lwIP's altcp layer left out).
UNIT_selftest := src/selftest.c src/listen.c src/log.c $(filter-out %/altcp.c %/altcp_alloc.c %/altcp_tcp.c,$(LWIP_ALL))
UNIT_storage_flash := boards/mps2-an385/storage_flash.c boards/mps2-an385/flash_model.c src/log.c
# The lm3s6965evb's SD store on a RAM card (the test's own blockdev.h device).
UNIT_storage_sd := boards/lm3s6965evb/storage_sd.c src/log.c
$(TEST_OUT)/obj/tests/unit/test_storage_sd.o: TEST_CFLAGS += -Iboards/lm3s6965evb

UNIT_NAMES := $(patsubst tests/unit/test_%.c,%,$(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_NAMES:%=$(TEST_OUT)/unit/test_%)

# Sanitized objects: one tree for our code and the dependencies alike.
$(TEST_OUT)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC/SAN  $<"
	@$(CC) $(TEST_CFLAGS) $(WARNINGS) -c $< -o $@
$(TEST_OUT)/dep/lwip/%.o: $(LWIP_DIR)/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC/SAN  lwip/$*.c"
	@$(CC) $(TEST_CFLAGS) -w -c $< -o $@
$(TEST_OUT)/dep/lua/%.o: $(LUA_DIR)/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC/SAN  lua/$*.c"
	@$(CC) $(TEST_CFLAGS) -w -include port/lua/luaconf_postern.h -c $< -o $@
$(TEST_OUT)/dep/mbedtls/%.o: $(MBEDTLS_DIR)/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC/SAN  mbedtls/$*.c"
	@$(CC) $(TEST_CFLAGS) -w -c $< -o $@

# Maps a source path to its sanitized object.
test_obj = $(patsubst $(LWIP_DIR)/%.c,$(TEST_OUT)/dep/lwip/%.o,$(patsubst $(LUA_DIR)/%.c,$(TEST_OUT)/dep/lua/%.o,$(patsubst \
  $(MBEDTLS_DIR)/%.c,$(TEST_OUT)/dep/mbedtls/%.o,$(patsubst %.c,$(TEST_OUT)/obj/%.o,$(1)))))

define unit_rule
$(TEST_OUT)/unit/test_$(1): $(call test_obj,tests/unit/test_$(1).c $(UNIT_$(1)))
	@mkdir -p $$(@D)
	@echo "  LD/SAN  $$@"
	@$(CC) $(SAN_FLAGS) -o $$@ $$^ $(UNIT_LDLIBS_$(1))
endef
$(foreach n,$(UNIT_NAMES),$(eval $(call unit_rule,$(n))))
-include $(shell find $(TEST_OUT) -name '*.d' 2>/dev/null)

unit: $(UNIT_BINS)

# The IPv6 path to a board under QEMU, whose hostfwd is IPv4 only (tests/e2e/test_ipv6.py):
# libslirp with [::1] forwards on one side, QEMU's stream netdev on the other. A host tool on every BOARD.
SLIRP_BRIDGE := $(TEST_OUT)/slirp-bridge
$(SLIRP_BRIDGE): tests/slirp_bridge.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@gcc -std=c11 -O2 -g -D_GNU_SOURCE $(WARNINGS) $$(pkg-config --cflags slirp) -o $@ $< $$(pkg-config --libs slirp)
.PHONY: slirp-bridge
slirp-bridge: $(SLIRP_BRIDGE)

# libFuzzer targets (clang): tests/fuzz/fuzz_NAME.c with FUZZ_NAME sources.
FUZZ_http_parser := src/http_parser.c src/text.c
FUZZ_chunked := src/chunked.c src/text.c
FUZZ_multipart := src/multipart.c src/text.c
FUZZ_conditional := src/conditional.c src/text.c
# The whole connection state machine over a fake altcp and storage (tests/fuzz/fake_*.c):
# real lwIP pbufs and pools (lwIP's altcp layer is replaced by the fake), the Lua policy, mbedTLS.
FUZZ_conn := tests/fuzz/fake_altcp.c tests/fuzz/fake_storage_mem.c src/http_conn.c src/http_request.c src/http_upload.c src/http_form.c src/http_routes.c src/http_answer.c src/http_conditional.c src/conditional.c src/http_web.c $(PAGE_C) src/listen.c src/http_parser.c src/chunked.c src/multipart.c \
  src/http_response.c src/http_status.c src/text.c src/digest.c src/log.c src/policy.c src/policy_pattern.c port/lua_arena.c port/lua_math.c port/arena.c \
  $(filter-out %/altcp.c %/altcp_alloc.c %/altcp_tcp.c,$(LWIP_ALL)) $(LUA_ALL) $(MBEDTLS_ALL)
# Extra flags of one target. Lua wants its config header; mbedTLS's alignment.h tests
# MBEDTLS_GCC_VERSION, which clang leaves undefined (0 either way), under -Wundef;
# lwIP checks its pools for double frees and overruns (each element as it comes and
# goes; the harness checks every element after each step). The two ignore lists keep
# coverage and sanitizers out of code that only cost time (see each file); clang 14
# drops the coverage list when -fsanitize-ignorelist comes after it, so it comes last.
# FUZZ_CONN_DEFS: extra -D flags for the harness (tests/fuzz/fuzz_conn.c), e.g. its
# FUZZ_CONN_PBUF_BOUND and FUZZ_CONN_ZERO_PBUFS; a change rebuilds the target.
FUZZ_CFLAGS_conn := $(DEFINES_BASE) -DPOSTERN_TLS=0 -DPOSTERN_IPV6=$(IPV6) -include port/lua/luaconf_postern.h -DMBEDTLS_GCC_VERSION=0 \
  -DMEMP_SANITY_CHECK=1 -DMEMP_OVERFLOW_CHECK=1 -DMEM_SANITY_CHECK=1 -DMEM_OVERFLOW_CHECK=2 \
  -fsanitize-ignorelist=tests/fuzz/conn_nosan.txt -fsanitize-coverage-ignorelist=tests/fuzz/conn_nocov.txt \
  $(FUZZ_CONN_DEFS)
FUZZ_DEPS_conn := tests/fuzz/fuzz_conn_fakes.h tests/fuzz/conn_nocov.txt tests/fuzz/conn_nosan.txt \
  $(BUILD)/fuzz/conn-defs.txt
# The flags above that a command line may change, as a file that changes with them.
$(BUILD)/fuzz/conn-defs.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(FUZZ_CONN_DEFS)' | cmp -s - $@ || echo '$(FUZZ_CONN_DEFS)' > $@
.PHONY: FORCE
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_CFLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(INCLUDES) $(WARNINGS)
FUZZ_TIME ?= 60
# fuzz_conn runs a number of inputs rather than a time: at least a million
# (about 2 minutes at 10,000 a second on a 2-core machine).
FUZZ_CONN_RUNS ?= 1000000
FUZZ_LIMIT_conn = -runs=$(FUZZ_CONN_RUNS)
# An input that runs longer than this is a hang: libFuzzer saves it as a timeout.
FUZZ_INPUT_TIMEOUT ?= 10

define fuzz_rule
$(BUILD)/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_$(1)) src/postern_opts.h boards/$(BOARD)/board_opts.h $(FUZZ_DEPS_$(1))
	@mkdir -p $$(@D)
	@echo "  FUZZ    $$@"
	@clang $(FUZZ_CFLAGS) $(FUZZ_CFLAGS_$(1)) -o $$@ tests/fuzz/fuzz_$(1).c $(FUZZ_$(1))
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_rule,$(n))))

fuzz-build: $(FUZZ_BINS)

# Runs each target for FUZZ_TIME seconds (fuzz_conn for FUZZ_CONN_RUNS inputs),
# growing a corpus under build/fuzz; a crash or hang is saved there too.
fuzz: $(FUZZ_BINS)
	@for n in $(FUZZ_NAMES); do \
	  mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  case $$n in conn) limit='$(FUZZ_LIMIT_conn)';; *) limit='-max_total_time=$(FUZZ_TIME)';; esac; \
	  echo "  FUZZ    fuzz_$$n $$limit"; \
	  $(BUILD)/fuzz/fuzz_$$n $$limit -timeout=$(FUZZ_INPUT_TIMEOUT) -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; \
	done

E2E_PYTEST := /usr/bin/python3 -m pytest

# One pytest run: every unit binary (tests/test_unit.py) and every
# end-to-end scenario on every target (host, host-https, mps2, mps2-https;
# tests/conftest.py builds the board images a scenario needs; host-rtos, the
# NO_SYS=0 simulator, for the modules that list it), closed by pytest's
# summary line.
test:
	@scripts/need-tools.sh $(TOOLS) $(BOARD_TOOLS) $(TEST_TOOLS)
	@$(MAKE) --no-print-directory -j2 all unit fuzz-build certs slirp-bridge
	@$(MAKE) --no-print-directory -j2 NO_SYS=0 all
	@$(MAKE) --no-print-directory -j2 BOARD=mps2-an385 all
	@$(MAKE) --no-print-directory -j2 BOARD=lm3s6965evb all
	@$(E2E_PYTEST) -q -p no:cacheprovider tests $(PYTEST_ARGS)

# Figures, not tests: footprint, RAM, guest instruction counts on the board, decision cost, throughput and
# stalls against the budgets (tests/bench/figures.py). Not part of make test; about 10 minutes.
# BENCH_SECTIONS="board stalls" runs only those sections (figures.py names them all).
BENCH_SECTIONS ?=
bench:
	@scripts/need-tools.sh $(TOOLS) $(BOARD_TOOLS) $(TEST_TOOLS) valgrind:valgrind tshark:tshark
	@$(MAKE) --no-print-directory -j2 all certs
	@$(MAKE) --no-print-directory -j2 BOARD=mps2-an385 all
	@/usr/bin/python3 tests/bench/figures.py $(BENCH_SECTIONS)

# The end-to-end suite against a simulator built with ASan and UBSan (host
# board; TLS layer, lwIP, mbedTLS and Lua all sanitized). Not part of make test.
E2E_SAN_OUT := $(BUILD)/$(BOARD)-asan
e2e-asan:
	@$(MAKE) --no-print-directory -j2 OUT=$(E2E_SAN_OUT) \
	  BOARD_CFLAGS="-O1 -g -fno-strict-aliasing -ffunction-sections -fdata-sections $(SAN_FLAGS)" \
	  BOARD_LDLIBS="$(SAN_FLAGS) $(BOARD_LDLIBS)" all certs
	@POSTERN_TARGETS=$${POSTERN_TARGETS:-host,host-https,mps2,mps2-https} POSTERN_HOST_BINARY=$(CURDIR)/$(E2E_SAN_OUT)/postern \
	  $(E2E_PYTEST) -q -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

# The RTOS mode under ThreadSanitizer: a NO_SYS=0 simulator (host board; lwIP
# and its pthread port, mbedTLS and Lua all instrumented) for the host-rtos
# target and for the scenarios that start a simulator of their own. A report
# fails the run, wherever it came from (a test's assertions, or a device's
# shutdown after them): each process writes its reports under
# $(E2E_TSAN_OUT)/reports. tests/tsan.supp says what is suppressed, and why.
# Not part of make test.
E2E_TSAN_OUT := $(BUILD)/$(BOARD)-nosys0-tsan
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
e2e-tsan:
	@$(MAKE) --no-print-directory -j2 NO_SYS=0 OUT=$(E2E_TSAN_OUT) \
	  BOARD_CFLAGS="-O1 -g -fno-strict-aliasing -ffunction-sections -fdata-sections $(TSAN_FLAGS)" \
	  BOARD_LDLIBS="$(TSAN_FLAGS) $(filter-out $(HOST_RTOS_LDLIBS),$(BOARD_LDLIBS)) $(HOST_RTOS_LDLIBS)" all certs
	@rm -rf $(E2E_TSAN_OUT)/reports && mkdir -p $(E2E_TSAN_OUT)/reports
	@TSAN_OPTIONS="log_path=$(CURDIR)/$(E2E_TSAN_OUT)/reports/tsan suppressions=$(CURDIR)/tests/tsan.supp $(TSAN_OPTIONS)" \
	  POSTERN_TARGETS=host-rtos POSTERN_RTOS_BINARY=$(CURDIR)/$(E2E_TSAN_OUT)/postern \
	  POSTERN_HOST_BINARY=$(CURDIR)/$(E2E_TSAN_OUT)/postern $(E2E_PYTEST) -q -p no:cacheprovider tests/e2e $(PYTEST_ARGS); \
	  rc=$$?; reports=$$(ls $(E2E_TSAN_OUT)/reports); \
	  if [ -n "$$reports" ]; then cat $(E2E_TSAN_OUT)/reports/*; \
	    echo "e2e-tsan: ThreadSanitizer reports in $(E2E_TSAN_OUT)/reports: $$reports"; exit 1; fi; \
	  echo "e2e-tsan: no ThreadSanitizer report"; exit $$rc
