# The OpenBank gateway: an nginx module built against Debian's nginx-dev.
#
#   make            objs/ngx_openbank_module.so
#   make run        the gateway on conf/nginx.conf, in the foreground
#   make run-cluster  three gateways (8081-8083) in cluster mode on a Redis
#                   Cluster (7000-7002), in the background; make stop-cluster
#   make test       the whole suite (prove -r t/)
#   make test-asan  the suite with the module built with AddressSanitizer
#   make bench      the benchmark, ratios against plain nginx
#   make lint       nginx's C style: 80 columns, no tabs, no // comments
#   make deps       the Debian packages all of the above need, and the npm
#                   packages of the interop test (t/interop) and of the
#                   developer portal (portal/)

SHELL       := /bin/bash
NGINX_SRC   := /usr/share/nginx/src
BUILD       := build
MODULE_DIR  := $(CURDIR)/ngx_openbank_module
MODULE      := objs/ngx_openbank_module.so
ASAN_MODULE := objs/asan/ngx_openbank_module.so
OB_PORT     ?= 8080

SOURCES := $(wildcard ngx_openbank_module/*.c include/*.h) \
           ngx_openbank_module/config

CFLAGS_COMMON := -g -O2 -fPIC -fstack-protector-strong \
                 -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS_ASAN   := -g -O1 -fPIC -fsanitize=address -fno-omit-frame-pointer \
                 -Wall -Wextra -Werror -Wno-unused-parameter

# Build and run: the module's libraries, nginx and its Lua module.
DEPS_BUILD := gcc make nginx nginx-dev libnginx-mod-http-lua \
              libnginx-mod-http-ndk libluajit2-5.1-dev libssl-dev \
              libyajl-dev libsqlite3-dev lua-cjson openssl
DEPS_BUILD += lua-expat
# Cluster mode's Redis protocol (docs/cluster.md).
DEPS_BUILD += libhiredis-dev
# Tests, memory checks and the benchmark.
DEPS_TEST  := libtest-base-perl libipc-run-perl libwww-perl \
              libcrypt-jwt-perl libtext-diff-perl libjson-perl \
              libcryptx-perl faketime libfaketime clang \
              libclang-rt-14-dev curl wrk python3-cryptography
# OpenAPI test (YAML) and the integrator guide's Python example.
DEPS_TEST  += libyaml-libyaml-perl python3-requests
DEPS_TEST  += python3-authlib python3-jwt
# The developer portal's browser test (t/portal/browser.t).
DEPS_TEST  += chromium chromium-driver python3-selenium
# docs/webhooks.md's Java verifier (t/webhooks/docs.t).
DEPS_TEST  += openjdk-17-jdk-headless
# The benchmark's njs peer (bench/scenarios/40-token-njs).
DEPS_TEST  += libnginx-mod-http-js
# Cluster mode: the tests' own Redis servers (t/lib/OpenBank/Redis.pm) and
# make run-cluster.
DEPS_TEST  += redis-server redis-tools

.PHONY: all deps run run-cluster stop-cluster test test-asan bench lint include-graph clean fuzz FORCE

all: $(MODULE)

INTEROP     := t/interop/node_modules/.package-lock.json
PORTAL_NPM  := portal/node_modules/.package-lock.json

deps: $(BUILD)/.deps $(INTEROP) $(PORTAL_NPM)

# apt-get only for what is missing; once installed, a stamp file, made
# again when the list of packages changes (not at every edit of this file).
DEPS_LIST := $(BUILD)/.deps-list

$(DEPS_LIST): FORCE
	@mkdir -p $(BUILD)
	@echo $(DEPS_BUILD) $(DEPS_TEST) | cmp -s - $@ \
	    || echo $(DEPS_BUILD) $(DEPS_TEST) > $@

$(BUILD)/.deps: $(DEPS_LIST)
	@missing=$$(for p in $(DEPS_BUILD) $(DEPS_TEST); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	        | grep -q '^install ok installed$$' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q && apt-get install -y -q --no-install-recommends \
	        $$missing; \
	fi
	@mkdir -p $(BUILD) && touch $@

# The interop test's clients from the npm registry, as locked in
# t/interop/package-lock.json (no install scripts); Debian's node and npm
# only where the machine has no node.
$(INTEROP): t/interop/package.json t/interop/package-lock.json | $(BUILD)/.deps
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	    echo "installing: nodejs npm"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q && apt-get install -y -q --no-install-recommends \
	        nodejs npm; \
	fi
	cd t/interop && npm ci --no-audit --no-fund --ignore-scripts

# The developer portal's Swagger UI (swagger-ui-dist), served as static
# files from portal/node_modules (conf/nginx.conf): as locked in
# portal/package-lock.json, no install scripts.
$(PORTAL_NPM): portal/package.json portal/package-lock.json | $(INTEROP)
	cd portal && npm ci --no-audit --no-fund --ignore-scripts

# nginx's configure writes into its source tree: build in a copy of it,
# configured again only when the module's config changes.
define configure_nginx
	rm -rf $(1) && mkdir -p $(1) && cp -r $(NGINX_SRC)/. $(1)/
	cd $(1) && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt="$(2)" --with-ld-opt="$(3)" \
	    --add-dynamic-module=$(MODULE_DIR) > configure.log
endef

$(BUILD)/nginx/objs/Makefile: $(BUILD)/.deps ngx_openbank_module/config
	$(call configure_nginx,$(BUILD)/nginx,$(CFLAGS_COMMON),)

$(BUILD)/nginx-asan/objs/Makefile: $(BUILD)/.deps ngx_openbank_module/config
	$(call configure_nginx,$(BUILD)/nginx-asan,$(CFLAGS_ASAN),-fsanitize=address)

# The module is installed by a rename, never written over: a running nginx
# has the old file mapped, and its processes (a respawned cache manager,
# a new worker) would run a mix of both builds and crash.
define install_module
	@mkdir -p $(dir $(2))
	cp $(1) $(2).tmp.$$$$ && mv -f $(2).tmp.$$$$ $(2)
endef

$(MODULE): $(BUILD)/nginx/objs/Makefile $(SOURCES)
	$(MAKE) -s -C $(BUILD)/nginx -f objs/Makefile modules
	$(call install_module,$(BUILD)/nginx/objs/ngx_http_openbank_module.so,$@)

$(ASAN_MODULE): $(BUILD)/nginx-asan/objs/Makefile $(SOURCES)
	$(MAKE) -s -C $(BUILD)/nginx-asan -f objs/Makefile modules
	$(call install_module,$(BUILD)/nginx-asan/objs/ngx_http_openbank_module.so,$@)

run: $(MODULE) run/pki/mtls.conf $(PORTAL_NPM)
	@mkdir -p run/tmp run/bank
	@# workers of a root master run as nobody: the bank writes its database
	@if [ $$(id -u) = 0 ]; then chown nobody run/bank; fi
	@sed 's/127\.0\.0\.1:8080;/127.0.0.1:$(OB_PORT);/' conf/nginx.conf \
	    > conf/.run.conf
	@echo "openbank gateway on http://127.0.0.1:$(OB_PORT)" \
	      "(demo credentials: conf/demo/credentials.json)"
	@echo "and on https://127.0.0.1:8443 with client certificates" \
	      "(CA: run/pki/ca.crt)"
	exec nginx -p $(CURDIR)/ -c $(CURDIR)/conf/.run.conf -e stderr

# Cluster mode on this machine (docs/cluster.md): Debian's redis-server as
# a Redis Cluster of three masters on 7000-7002 (CLUSTER_REPLICAS=1: and
# a replica each on 7003-7005) and three gateways on 8081-8083, state
# under run/cluster/.
run-cluster: $(MODULE) $(PORTAL_NPM)
	tools/run-cluster start

stop-cluster:
	tools/run-cluster stop

# The demo PKI of the TLS server on 8443, made once: a CA and a server
# certificate it signs.  The demo partner's client certificate is
# conf/demo/demo-client.crt (its fingerprint is in conf/nginx.conf).
run/pki/mtls.conf:
	@mkdir -p run/pki
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	    -nodes -days 3650 -subj "/CN=OpenBank demo CA" \
	    -keyout run/pki/ca.key -out run/pki/ca.crt 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -subj "/CN=localhost" -keyout run/pki/server.key \
	    -out run/pki/server.csr 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > run/pki/san.ext
	openssl x509 -req -in run/pki/server.csr -CA run/pki/ca.crt \
	    -CAkey run/pki/ca.key -CAcreateserial -days 825 \
	    -extfile run/pki/san.ext -out run/pki/server.crt 2>/dev/null
	rm -f run/pki/server.csr run/pki/san.ext
	@if [ $$(id -u) = 0 ]; then chmod 600 run/pki/*.key; fi
	echo 'include mtls-server.conf;' > $@

# Everything the tests run is built before the first of them starts: no
# test calls make, so prove -j never rebuilds the module under running
# tests.
test: $(MODULE) objs/sigtool $(INTEROP) $(PORTAL_NPM)
	prove -r t/

test-asan: $(ASAN_MODULE) objs/sigtool $(INTEROP) $(PORTAL_NPM)
	TEST_NGINX_ASAN=1 TEST_NGINX_MODULE=$(CURDIR)/$(ASAN_MODULE) prove -r t/

bench: $(MODULE)
	bench/run

# libFuzzer targets of the parsers of untrusted input (fuzz/): each runs
# FUZZ_SECONDS from its seed corpus and fails on any crash or leak.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := jwt jwks admin registration events redis changes answer journal
FUZZ_NGX     := $(BUILD)/nginx
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -Wall \
                -I$(FUZZ_NGX)/src/core -I$(FUZZ_NGX)/src/event \
                -I$(FUZZ_NGX)/src/event/modules -I$(FUZZ_NGX)/src/os/unix \
                -I$(FUZZ_NGX)/objs -I$(FUZZ_NGX)/src/http \
                -I$(FUZZ_NGX)/src/http/modules -I$(FUZZ_NGX)/src/http/v2 \
                -Iinclude
FUZZ_SRCS    := ngx_openbank_module/ngx_http_openbank_jwt.c \
                ngx_openbank_module/ngx_http_openbank_jwks.c \
                ngx_openbank_module/ngx_http_openbank_util.c \
                ngx_openbank_module/ngx_http_openbank_admin_json.c \
                ngx_openbank_module/ngx_http_openbank_registration_json.c \
                ngx_openbank_module/ngx_http_openbank_events_json.c \
                ngx_openbank_module/ngx_http_openbank_redis_reply.c \
                ngx_openbank_module/ngx_http_openbank_journal_parse.c \
                fuzz/ngx_stubs.c

objs/fuzz/fuzz_%: fuzz/fuzz_%.c $(FUZZ_SRCS) $(wildcard include/*.h) \
                  $(MODULE)
	@mkdir -p objs/fuzz
	clang $(FUZZ_CFLAGS) $< $(FUZZ_SRCS) -lcrypto -lyajl -lhiredis -lz -o $@

fuzz: $(addprefix objs/fuzz/fuzz_,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p objs/fuzz/corpus-$$t; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    objs/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
	        -artifact_prefix=objs/fuzz/$$t- -print_final_stats=1 \
	        objs/fuzz/corpus-$$t fuzz/corpus/$$t \
	        2> objs/fuzz/$$t.log \
	    || { tail -60 objs/fuzz/$$t.log; exit 1; }; \
	    grep -E '^stat::number_of_executed_units' objs/fuzz/$$t.log; \
	done

lint:
	@files=$$(ls ngx_openbank_module/*.c ngx_openbank_module/*.h \
	          include/*.h 2>/dev/null); \
	bad=0; \
	awk 'length > 80 { print FILENAME ":" FNR ": over 80 columns"; b=1 } \
	     END { exit b }' $$files || bad=1; \
	grep -n "$$(printf '\t')" $$files | sed 's/$$/: tab/' | grep . && bad=1; \
	grep -nE '(^|[^:"])//' $$files | sed 's/$$/: \/\/ comment/' \
	    | grep . && bad=1; \
	if [ $$bad = 0 ]; then echo "lint: clean"; fi; \
	exit $$bad

# which file includes which header, which calls which; fails on a cycle
include-graph:
	t/tools/include-graph

clean:
	rm -rf $(BUILD) objs run/tmp conf/.run.conf t/servroot*

# RFC 9421: the module's signature code alone, for the tests and the docs
# (t/tools/sigtool.c), and its libFuzzer target (fuzz/).
SIG_INCS := -Iinclude -I$(BUILD)/nginx/objs -I$(NGINX_SRC)/src/core \
            -I$(NGINX_SRC)/src/event -I$(NGINX_SRC)/src/event/modules \
            -I$(NGINX_SRC)/src/os/unix
SIG_SRCS := ngx_openbank_module/ngx_http_openbank_httpsig.c \
            include/ngx_http_openbank_httpsig.h

objs/sigtool: $(BUILD)/nginx/objs/Makefile t/tools/sigtool.c $(SIG_SRCS)
	@mkdir -p objs
	$(CC) -g -O1 -Wall -Wextra -Werror -Wno-unused-parameter $(SIG_INCS) \
	    -o $@ t/tools/sigtool.c ngx_openbank_module/ngx_http_openbank_httpsig.c \
	    -lcrypto

# bench/run's reference rows: the module's token verification and
# response signing in a loop (bench/lib/speed.c).
BENCH_SPEED_SRCS := ngx_openbank_module/ngx_http_openbank_jwt.c \
                    ngx_openbank_module/ngx_http_openbank_util.c \
                    ngx_openbank_module/ngx_http_openbank_httpsig.c \
                    fuzz/ngx_stubs.c

objs/bench-speed: bench/lib/speed.c $(BENCH_SPEED_SRCS) $(wildcard include/*.h) \
                  $(MODULE)
	gcc -O2 -ffunction-sections -Wl,--gc-sections -Wall -Wextra -Werror \
	    -Wno-unused-parameter $(filter -I%,$(FUZZ_CFLAGS)) \
	    -o $@ $< $(BENCH_SPEED_SRCS) -lcrypto -lyajl

objs/fuzz-signature: $(BUILD)/nginx/objs/Makefile fuzz/fuzz_signature.c \
                     $(SIG_SRCS)
	clang -g -O1 -fsanitize=fuzzer,address,undefined $(SIG_INCS) \
	    -o $@ fuzz/fuzz_signature.c \
	    ngx_openbank_module/ngx_http_openbank_httpsig.c -lcrypto

# The XML parser and the pain.001 mapping (lua/openbank/xml.lua,
# pain001.lua): fuzz/fuzz_xml.lua on a LuaJIT interpreter linked with the
# LuaJIT nginx uses (Debian's luajit package conflicts with it).
objs/lua-host: fuzz/lua_host.c
	@mkdir -p objs
	gcc -O2 -Wall -Wextra -I/usr/include/luajit-2.1 -o $@ $< \
	    -lluajit-5.1 -lm -ldl

.PHONY: fuzz-xml
fuzz-xml: objs/lua-host
	LUA_CPATH="/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;" \
	    objs/lua-host fuzz/fuzz_xml.lua fuzz/corpus/xml $(FUZZ_SECONDS)

# The developer portal's PEM public keys into JWKs
# (lua/openbank/portal/pem.lua, OpenSSL by FFI): fuzz/fuzz_pem.lua on the
# same interpreter.
.PHONY: fuzz-pem
fuzz-pem: objs/lua-host
	LUA_CPATH="/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;" \
	    objs/lua-host fuzz/fuzz_pem.lua fuzz/corpus/pem $(FUZZ_SECONDS)

.PHONY: fuzz-signature
fuzz-signature: objs/fuzz-signature
	@mkdir -p $(BUILD)/fuzz-signature-corpus
	objs/fuzz-signature -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    $(BUILD)/fuzz-signature-corpus fuzz/corpus/signature
