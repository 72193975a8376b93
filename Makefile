# byline - build, test, demo, bench.
#   make            build/byline (release, -O2)
#   make check      install missing test deps, build with ASan+UBSan, run every test
#   make demo       the README's first command: stand-in cluster + byline + kubectl
#   make bench      wrk: direct vs nginx vs byline (audited) vs byline without the ledger
#   make fuzz       libFuzzer targets (clang) under build/fuzz/
CC       ?= cc
B        ?= build
PYTHON   ?= python3
CSTD     := -std=c17 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wformat=2 -Wvla
CFLAGS   ?= -O2 -g
ALLCFLAGS = $(CSTD) $(WARN) $(CFLAGS) -Isrc -MMD -MP
LDLIBS   := -lssl -lcrypto -lyaml -ljansson -lsqlite3 -lz -lnghttp2 -lexpat -lpthread
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path src/cli/main.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))

OBJ      := $(LIB_SRC:src/%.c=$(B)/obj/%.o)
ASAN_OBJ := $(LIB_SRC:src/%.c=$(B)/asan/obj/%.o)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(B)/asan/tests/%)
FUZZERS  := $(FUZZ_SRC:fuzz/%.c=$(B)/fuzz/%)

.PHONY: all check unit demo bench bench-policy fuzz fuzz-replay clean asan deps
all: $(B)/byline

$(B)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -c $< -o $@

$(B)/asan/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O1 -g $(SAN) -Isrc -MMD -MP -c $< -o $@

$(B)/libbyline.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/asan/libbyline.a: $(ASAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/byline: $(B)/obj/cli/main.o $(B)/libbyline.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/asan/byline: $(B)/asan/obj/cli/main.o $(B)/asan/libbyline.a
	$(CC) -g $(SAN) -o $@ $^ $(LDLIBS)

# Unit tests include the .c under test when they need its statics (as h2o's t/00unit does).
$(B)/asan/tests/%: tests/unit/%.c $(B)/asan/libbyline.a
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O1 -g $(SAN) -Isrc -Itests/unit -o $@ $< $(B)/asan/libbyline.a $(LDLIBS) -lcmocka

asan: $(B)/asan/byline $(TESTS)

# libFuzzer needs clang; `make fuzz` builds every fuzz/fuzz_*.c. The
# library is compiled once (instrumented, not linked with libFuzzer's main)
# and each target links against it.
FUZZ_FLAGS := $(CSTD) $(WARN) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -Isrc
FUZZ_OBJ   := $(LIB_SRC:src/%.c=$(B)/fuzz/obj/%.o)

$(B)/fuzz/obj/%.o: src/%.c
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(B)/fuzz/libbyline.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/fuzz/%: fuzz/%.c $(B)/fuzz/libbyline.a
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(B)/fuzz/libbyline.a $(LDLIBS)

fuzz: $(FUZZERS)

deps:
	@tests/deps.sh

unit: $(TESTS)
	@tests/run-unit.sh $(TESTS)

check:
	@tests/run.sh

demo:
	@scripts/demo.sh

bench:
	@bench/run.sh

# What one policy decision costs (1,000 rules, 1,000 identities): ns per evaluation.
$(B)/bench/policy_eval: bench/policy_eval.c $(B)/libbyline.a
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -g -Isrc -o $@ $< $(B)/libbyline.a $(LDLIBS)

bench-policy: $(B)/bench/policy_eval
	@$(B)/bench/policy_eval

# What one group commit (append + fdatasync) costs a disk, without byline.
$(B)/bench/commit_probe: bench/commit_probe.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -g -o $@ $<

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) $(B)/obj/cli/main.d $(B)/asan/obj/cli/main.d
