# Self-test of the test harness (t/lib/OpenBank/Test.pm) on plain nginx and
# Lua features only: it must pass before ngx_openbank_module even builds.
#
# 1. the comparison functions, on good and bad input (a check that cannot
#    fail proves nothing);
# 2. data blocks exercising every section;
# 3. the procedural API: start, reload, kill, workers, raw client, more
#    gateways.

BEGIN {
    $ENV{TEST_NGINX_NO_MODULE} = 1;
    $ENV{TEST_HARNESS_GREETING} = 'hi from env';
}

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Test::Match qw(:DEFAULT
    substitute_vars parse_request_section parse_user_files body_diff
    check_headers json_subset_match json_subset_mismatch check_json
    log_patterns check_log unexpected_alerts crashed_workers
    log_without_debug);
use OpenBank::Test::Client qw(build_request parse_response normalize_headers
                              send_raw);
use File::Temp ();
use Time::HiRes ();
use POSIX ();

sub all_ok (@checks) { return !grep { !$_->{ok} } @checks }

# ---------------------------------------------------------------------
# 1. comparison functions

subtest 'json_subset_match' => sub {
    my $got = {code => 'invalid_token', n => 3, ok => JSON::PP::true,
               id => 'a1b2', list => [1, 'a'], extra => {x => 1}, nil => undef};
    ok json_subset_match($got, {code => 'invalid_token'}), 'subset';
    ok json_subset_match($got, {id => '~^[0-9a-f]+$'}), '~regex';
    ok json_subset_match($got, {id => qr/^a1/}), 'qr// value';
    ok json_subset_match($got, {list => [1, 'a'], nil => undef,
                                ok => JSON::PP::true}), 'array, null, bool';
    ok json_subset_match($got, {extra => {}}), 'nested subset';

    ok !json_subset_match($got, {code => 'expired'}), 'wrong string';
    ok !json_subset_match($got, {missing => 1}), 'missing key';
    ok !json_subset_match($got, {id => '~^\d+$'}), 'regex mismatch';
    ok !json_subset_match($got, {n => '3'}), 'number vs string';
    ok !json_subset_match($got, {n => 4}), 'wrong number';
    ok !json_subset_match($got, {ok => JSON::PP::false}), 'wrong boolean';
    ok !json_subset_match($got, {list => [1]}), 'array length';
    ok !json_subset_match($got, {extra => {x => 2}}), 'nested value';
    ok !json_subset_match($got, {nil => 0}), 'null vs number';
    ok !json_subset_match([], {}), 'array vs object';
    like json_subset_mismatch($got, {extra => {x => 2}}),
         qr/^\$\.extra\.x: expected 2, got 1/, 'mismatch names the path';

    ok all_ok(check_json('{"a":1,"b":"x"}', '{"a": 1}')), 'check_json ok';
    ok !all_ok(check_json('not json', '{"a": 1}')), 'body not JSON';
    ok !all_ok(check_json('{"a":1}', '{"a": }')), 'expectation not JSON';
    my ($c) = check_json('{"a":1}', '{"a": 2}');
    like $c->{diag}, qr/^-\s+"a" : 2/m, 'diff of the JSON on mismatch';
};

subtest 'check_headers' => sub {
    my $h = {'content-type' => ['text/plain'], 'x-multi' => ['a', 'b'],
             'x-empty' => ['']};
    ok all_ok(check_headers($h, "Content-Type: text/plain\n!X-Powered-By\n")),
       'present and absent';
    ok all_ok(check_headers($h, "content-type: text/plain")),
       'name is case-insensitive';
    ok all_ok(check_headers($h, "X-Multi: a, b")), 'values joined';
    ok all_ok(check_headers($h, "X-Multi: a\nX-Multi: b")), 'value by value';
    ok all_ok(check_headers($h, "X-Empty:")), 'present and empty';
    ok all_ok(check_headers($h, "Content-Type: ^text/", 1)), 'like';

    ok !all_ok(check_headers($h, "Content-Type: text/html")), 'wrong value';
    ok !all_ok(check_headers($h, "!Content-Type")), 'present, want absent';
    ok !all_ok(check_headers($h, "X-Missing: 1")), 'absent, want present';
    ok !all_ok(check_headers($h, "X-Multi: a")), 'only one of two values';
    ok !all_ok(check_headers($h, "X-Multi: b\nX-Multi: a")), 'order counts';
    ok !all_ok(check_headers($h, "X-Empty: x")), 'empty is not x';
    ok !all_ok(check_headers($h, "Content-Type: ^html", 1)), 'like fails';
    ok !eval { check_headers($h, "garbage line"); 1 }, 'bad spec dies';
};

subtest 'bodies and logs' => sub {
    is body_diff("hello\n", "hello\n"), undef, 'same body';
    like body_diff("hello\nworld\n", "hello\nthere\n"),
         qr/^-there\n\+world/m, 'diff on mismatch';
    like body_diff("hello", "hello\n"), qr/final newline/, 'newline noted';
    like body_diff(undef, "x"), qr/no response body/, 'no body';

    my $log = "2026/01/01 00:00:00 [error] 1#1: *1 marker one\n"
            . "2026/01/01 00:00:00 [debug] 1#1: *1 http header:\n"
            . "X-Alert: [alert] in a header\n"
            . "2026/01/01 00:00:00 [alert] 1#1: worker process 7 exited"
            . " on signal 11\n"
            . "2026/01/01 00:00:00 [crit] 1#1: something critical\n";
    ok all_ok(check_log($log, ['marker one', qr/marker \w+/])), 'found';
    ok !all_ok(check_log($log, ['marker two'])), 'not found';
    ok all_ok(check_log($log, ['marker two'], 1)), 'absent as wanted';
    ok !all_ok(check_log($log, ['[error]'], 1)), 'present, unwanted';

    is_deeply [unexpected_alerts($log)],
              ['2026/01/01 00:00:00 [crit] 1#1: something critical'],
              'crit found; debug dump and crash line are not alerts';
    is_deeply [unexpected_alerts($log, ['something critical'])], [],
              'an error_log line excuses an alert';
    is scalar(crashed_workers($log)), 1, 'worker crash found';
    is scalar(crashed_workers($log, [qr/signal 11/])), 0, 'crash excused';
    is_deeply [log_without_debug($log)],
              [(split /\n/, $log)[0, 3, 4]], 'debug entries dropped';

    is_deeply [log_patterns("a\nb\n")], ['a', 'b'], 'lines';
    my @p = log_patterns([qr/x/, "a b\n"]);
    is ref $p[0], 'Regexp', 'eval array: regex kept';
    is $p[1], "a b\n", 'eval array: string whole';
};

subtest 'sections with their own syntax' => sub {
    my $vars = {TEST_NGINX_SERVER_PORT => 1234, TEST_NGINX_ROOT => '/r'};
    is substitute_vars('listen $TEST_NGINX_SERVER_PORT; $server_port'
                     . ' $TEST_NGINX_UNKNOWN $TEST_NGINX_ROOTX', $vars),
       'listen 1234; $server_port $TEST_NGINX_UNKNOWN $TEST_NGINX_ROOTX',
       'only the known names, exactly';
    my $deep = substitute_vars({a => ['$TEST_NGINX_ROOT', qr/x/]}, $vars);
    is $deep->{a}[0], '/r', 'deep';
    is ref $deep->{a}[1], 'Regexp', 'regexps left alone';

    is_deeply [parse_request_section("GET /t\n")],
              ['GET', '/t', 'HTTP/1.1', undef], 'request line';
    is_deeply [parse_request_section("POST /t HTTP/1.0\na=1\nb=2\n")],
              ['POST', '/t', 'HTTP/1.0', "a=1\nb=2"], 'with body';
    ok !eval { parse_request_section("/t\n"); 1 }, 'bad request line dies';

    is_deeply [parse_user_files(">>> conf/a.json\n{}\n>>> html/b\nx\ny\n")],
              [['conf/a.json', "{}\n"], ['html/b', "x\ny\n"]], 'user_files';
    ok !eval { parse_user_files(">>> ../x\n1\n"); 1 }, 'no .. paths';
    ok !eval { parse_user_files(">>> /etc/x\n1\n"); 1 }, 'no absolute paths';
};

subtest 'client' => sub {
    is build_request(method => 'GET', path => '/t'),
       "GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
       'no header the test did not ask for';
    is build_request(method => 'POST', path => '/t', body => 'ab',
                     headers => "Host: x\nX-A: 1\n"),
       "POST /t HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nConnection: close\r\n"
       . "Content-Length: 2\r\n\r\nab", 'body and overridden Host';
    is_deeply normalize_headers(['X-A' => 1, 'X-A' => 2, 'X-B: 3']),
              [['X-A', 1], ['X-A', 2], ['X-B', 3]], 'header list';

    my $res = parse_response("HTTP/1.1 100 Continue\r\n\r\n"
        . "HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\n"
        . "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    is $res->status, 200, 'interim response skipped';
    is $res->body, 'abcde', 'chunked body';
    is_deeply $res->headers->{'x-a'}, [1, 2], 'multi-valued header';
    is scalar $res->header('X-A'), '1, 2', 'header() joins';
    is $res->error, undef, 'complete';
    like parse_response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
         ->error, qr/shorter/, 'truncated body noticed';
    like parse_response('')->error, qr/empty/, 'empty response noticed';
};

subtest 'memory reports' => sub {
    my $file = servroot() . '/logs/asan.4242';
    open my $fh, '>', $file or die $!;
    print {$fh} "==4242==ERROR: AddressSanitizer: heap-use-after-free\n";
    close $fh;
    local $ENV{TEST_NGINX_ASAN} = 1;
    my @reports = OpenBank::Test::Nginx::memory_reports();
    is scalar @reports, 1, 'an ASan log is a report';
    like $reports[0], qr/heap-use-after-free/, 'with its content';
    ok !-e $file, 'reported once (file removed)';
};

# ---------------------------------------------------------------------
# 2. data blocks

our @init_pids;
repeat_each(2);
run_blocks();

# each repetition's init saw the nginx of the one before it
ok defined $init_pids[1], 'block 10 started nginx';
is_deeply [@init_pids[2, 3]], [@init_pids[1, 1]],
          'block 11 (same config) did not restart nginx';

# ---------------------------------------------------------------------
# 3. procedural API

my $single = $ENV{TEST_NGINX_USE_VALGRIND};   # master_process off

subtest 'start, workers, reload' => sub {
    start_nginx({
        workers => 2,
        config  => 'location = /v { return 200 "one\n"; }',
        http_config => '# $TEST_NGINX_SERVER_PORT substituted here too',
    });
    my $conf = do { local (@ARGV, $/) = servroot() . '/conf/nginx.conf'; <> };
    like $conf, qr/# \d+ substituted here too/, 'variables in start_nginx';

    my @workers = worker_pids();
    is scalar @workers, $single ? 0 : 2, 'two workers';
    is http_request(GET => '/v')->body, "one\n", 'first config';

    my $master = nginx_pid();
    my $offset = error_log_offset();
    ok reload_nginx({workers => 2,
                     config => 'location = /v { return 200 "two\n"; }'}),
       'reload';
    SKIP: {
        skip 'valgrind: reload is a restart', 3 if $single;
        is nginx_pid(), $master, 'same master after reload';
        my @new = worker_pids();
        is scalar @new, 2, 'two new workers';
        ok !(grep { my $w = $_; grep { $_ == $w } @workers } @new),
           'old workers gone';
    }
    is http_request(GET => '/v')->body, "two\n", 'new config served';
    like error_log_since($offset), $single ? qr/exit/ : qr/reconfiguring/,
         'error_log_since';

    my ($ok, $why) = reload_nginx({config => 'location = /v { return abc; }'});
    ok !$ok, 'a bad config is refused';
    like $why, qr/invalid return code "abc"/, 'with the reason';
    is http_request(GET => '/v')->body, "two\n", 'old config still served';
};

subtest 'http_request and the raw client' => sub {
    start_nginx({config => <<'EOC'});
location = /h {
    content_by_lua_block {
        local h = ngx.req.get_headers()
        local names = {}
        for k in pairs(h) do names[#names + 1] = k end
        table.sort(names)
        for _, k in ipairs(names) do
            local v = h[k]
            if type(v) == "table" then v = table.concat(v, "|") end
            ngx.say(k, ": ", v)
        end
        ngx.req.read_body()
        ngx.say("body: ", ngx.req.get_body_data() or "")
    }
}
location = /slow { content_by_lua_block { ngx.sleep(1) ngx.say("late") } }
location = /multi {
    content_by_lua_block { ngx.header["X-Multi"] = {"a", "b"} ngx.say("m") }
}
EOC
    my $res = http_request(POST => '/h', ['X-A' => 1, 'X-A' => 2], 'xyz');
    is $res->status, 200, 'status';
    is $res->body, "connection: close\ncontent-length: 3\nhost: localhost\n"
                 . "x-a: 1|2\nbody: xyz\n", 'exactly the headers asked for';

    $res = http_request(GET => '/multi');
    is_deeply $res->headers->{'x-multi'}, ['a', 'b'], 'header values kept';
    is $res->{status}, 200, 'also a plain hash';

    my $t0 = Time::HiRes::time();
    $res = http_request(GET => '/slow', undef, undef, {timeout => 0.5});
    like $res->error, qr/timeout/, 'timeout reported';
    ok Time::HiRes::time() - $t0 < 2, 'and bounded';

    $res = http_raw_request("GET /h HTTP/1.0\r\n\r\n");
    is $res->status, 200, 'raw HTTP/1.0 request without Host';
    is $res->body, "body: \n", 'no header added to a raw request';
};

subtest 'kill_nginx' => sub {
    start_nginx({config => 'location = /k { return 204; }'});
    my @pids = (nginx_pid(), worker_pids());
    kill_nginx();
    ok !(grep { OpenBank::Test::Nginx::pid_alive($_) } @pids),
       'master and workers gone';
    is nginx_pid(), undef, 'no nginx';
    start_nginx({config => 'location = /k { return 204; }'});
    is http_request(GET => '/k')->status, 204, 'starts again';
    my $pid = nginx_pid();
    stop_nginx();
    ok !OpenBank::Test::Nginx::pid_alive($pid), 'stopped';
};

subtest 'start_gateway: more nginx beside the blocks\' one' => sub {
    my $conf = <<'EOC';
location = /who {
    content_by_lua_block {
        ngx.say(ngx.var.server_port, " $TEST_NGINX_SERVROOT ", VERSION)
    }
}
EOC
    start_nginx({config => $conf, http_config =>
                 'init_by_lua_block { VERSION = "main" }'});
    my $gw = start_gateway({workers => 2, config => $conf, http_config =>
                            'init_by_lua_block { VERSION = "one" }'});
    my $gw3 = start_gateway({config => $conf, http_config =>
                             'init_by_lua_block { VERSION = "one" }'});
    my $root = servroot();
    isnt $gw->port, server_port(), 'a port of its own';
    isnt $gw3->port, $gw->port, 'a third, on another port';
    is $gw->servroot, "$root/gw-1", 'a servroot of its own';
    is $gw3->servroot, "$root/gw-2", 'the third, its own too';
    is $gw->request(GET => '/who')->body,
       $gw->port . " $root/gw-1 one\n",
       'its own $TEST_NGINX_SERVER_PORT and $TEST_NGINX_SERVROOT';
    is http_request(GET => '/who')->body, server_port() . " $root main\n",
       'the blocks\' nginx is untouched';
    ok -s $gw->servroot . '/logs/error.log', 'its own error log';
    is scalar $gw->worker_pids, $single ? 0 : 2, 'its workers';

    # a reload of one while the others serve
    my $master = $gw->pid;
    my $offset = $gw->error_log_offset;
    my $child = fork // die;
    if ($child == 0) {
        my $bad = 0;
        for (1 .. 200) {
            my $r = $gw3->request(GET => '/who');
            $bad++ unless ($r->status // 0) == 200;
        }
        POSIX::_exit($bad ? 1 : 0);
    }
    ok $gw->reload({workers => 2, config => $conf, http_config =>
                    'init_by_lua_block { VERSION = "two" }'}),
       'reload of one gateway';
    waitpid $child, 0;
    is $?, 0, 'the other gateway answered every request meanwhile';
    SKIP: {
        skip 'valgrind: reload is a restart', 1 if $single;
        is $gw->pid, $master, 'same master';
    }
    like $gw->error_log_since($offset), $single ? qr/exit/ : qr/reconfiguring/,
         'in its own error log';
    is $gw->request(GET => '/who')->body, $gw->port . " $root/gw-1 two\n",
       'the new config served';
    my ($ok, $why) = $gw->reload({config => 'location = /v { return abc; }'});
    ok !$ok, 'a bad config is refused';
    like $why, qr/invalid return code/, 'with the reason';
    like $gw->request(GET => '/who')->body, qr/ two$/, 'old one still served';

    my @pids = ($gw->pid, $gw->worker_pids);
    $gw->kill;
    ok !(grep { OpenBank::Test::Nginx::pid_alive($_) } @pids), 'killed';
    ok !$gw->alive, 'not alive';
    $gw->restart;
    like $gw->request(GET => '/who')->body, qr/ two$/, 'restarted';
    @pids = ($gw->pid, $gw->worker_pids);
    undef $gw;
    ok !(grep { OpenBank::Test::Nginx::pid_alive($_) } @pids),
       'stopped when its object goes';
    is http_request(GET => '/who')->status, 200, 'the blocks\' one serves';
    my $pid3 = $gw3->pid;
    $gw3->stop;
    ok !OpenBank::Test::Nginx::pid_alive($pid3), 'stop';
};

subtest 'OpenBank::Load: concurrent requests over several nginx' => sub {
    require OpenBank::Load;
    my %s = (http_config => 'lua_shared_dict c 1m;', config => <<'EOC');
location = /l {
    content_by_lua_block {
        local c = ngx.shared.c
        local n = c:incr("now", 1, 0)
        local max = c:get("max") or 0
        if n > max then c:set("max", n) end
        ngx.sleep(0.05)
        c:incr("now", -1)
        ngx.say(ngx.var.server_port, " ", ngx.var.arg_i)
    }
}
location = /max { content_by_lua_block { ngx.say(ngx.shared.c:get("max")) } }
location = /teapot { return 418; }
EOC
    start_nginx(\%s);
    my $gw = start_gateway(\%s);
    my @ports = (server_port(), $gw->port);
    my $r = OpenBank::Load::run(
        ports => \@ports, connections => 100, requests => 400, keep => 1,
        request => sub ($i, $port) {
            return OpenBank::Load::request_line(GET => "/l?i=$i");
        });
    is_deeply $r->{status}, {200 => 400}, 'every request answered 200';
    is_deeply $r->{by_port}, {map { $_ => {200 => 200} } @ports},
              'spread over the ports';
    ok !(grep { $r->{answers}[$_]{body} ne "$ports[$_ % 2] $_\n" } 0 .. 399),
       'each answer is its own request\'s';
    for my $port (@ports) {
        my $max = http_request(GET => '/max', undef, undef, {port => $port});
        cmp_ok $max->body, '>=', 10, "$port: at least 10 at once";
    }
    $r = OpenBank::Load::run(ports => [$gw->port], requests => 5,
                             request => sub { "GET /teapot HTTP/1.0\r\n\r\n" });
    is_deeply $r->{status}, {418 => 5}, 'other statuses counted';
    $gw->kill;
    $r = OpenBank::Load::run(ports => [$gw->port], requests => 3,
                             request => sub { "GET /l HTTP/1.0\r\n\r\n" });
    is_deeply $r->{status}, {0 => 3}, 'a refused connection is status 0';
};

subtest 'a memory error is reported (under ASan or valgrind only)' => sub {
    plan skip_all => 'neither TEST_NGINX_ASAN nor TEST_NGINX_USE_VALGRIND'
        unless $ENV{TEST_NGINX_ASAN} || $ENV{TEST_NGINX_USE_VALGRIND};
    start_nginx({config => <<'EOC'});
location = /double-free {
    content_by_lua_block {
        local ffi = require "ffi"
        ffi.cdef[[ void *malloc(size_t n); void free(void *p); ]]
        local p = ffi.C.malloc(16)
        ffi.C.free(p)
        ffi.C.free(p)
        ngx.say("survived")
    }
}
EOC
    http_request(GET => '/double-free');
    my @reports;
    OpenBank::Test::Nginx::poll_until(5, sub {
        push @reports, OpenBank::Test::Nginx::memory_reports();
        return scalar @reports;
    });
    is scalar @reports, 1, 'one report';
    like $reports[0], qr/double-free|Invalid free/, 'naming the error';
    kill_nginx();
};

stop_nginx();
done_testing();

__DATA__

=== TEST 1: status, body, headers present and absent
--- config
location = /t {
    add_header X-Test yes;
    return 200 "hello\n";
}
--- request
GET /t
--- error_code: 200
--- response_body
hello
--- response_headers
Content-Type: text/plain
X-Test: yes
!X-Powered-By
--- response_headers_like
Server: ^nginx/\d
--- no_error_log
[error]



=== TEST 2: response_json with regexes, nginx variables left alone
--- config
location = /json {
    default_type application/json;
    return 200 '{"code":"invalid_token","request_id":"$request_id","n":3,"ok":true,"list":[1,"a"],"extra":{"x":1}}';
}
--- request
GET /json
--- response_json
{"code": "invalid_token", "request_id": "~^[0-9a-f]{32}$", "n": 3,
 "ok": true, "list": [1, "a"]}
--- response_headers
Content-Type: application/json



=== TEST 3: response_json from an eval filter, body regexes
--- config
location = /json { return 200 '{"a": {"b": [1, 2]}, "c": "xyz"}'; }
--- request
GET /json
--- response_json eval
{a => {b => [1, 2]}, c => qr/^x/}
--- response_body_like
^\{"a": \{"b"
--- response_body_unlike
error



=== TEST 4: status other than 200, $TEST_NGINX_* substituted
--- config
location = /p { return 403 "$server_port $TEST_NGINX_SERVER_PORT\n"; }
--- request
GET /p
--- error_code: 403
--- response_body
$TEST_NGINX_SERVER_PORT $TEST_NGINX_SERVER_PORT



=== TEST 5: more_headers reach the server, and nothing else is added
--- config
location = /h {
    content_by_lua_block {
        local h = ngx.req.get_headers()
        local names = {}
        for k in pairs(h) do names[#names + 1] = k end
        table.sort(names)
        for _, k in ipairs(names) do ngx.say(k, ": ", h[k]) end
    }
}
--- request
GET /h
--- more_headers
X-API-Key: abc
Authorization: Bearer t0k3n
--- response_body
authorization: Bearer t0k3n
connection: close
host: localhost
x-api-key: abc



=== TEST 6: request body on the request lines
--- config
location = /b {
    content_by_lua_block {
        ngx.req.read_body()
        ngx.say(ngx.var.request_method, " ", ngx.var.http_content_length)
        ngx.print(ngx.req.get_body_data())
    }
}
--- request
POST /b
a=1
b=2
--- response_body eval
"POST 7\na=1\nb=2"



=== TEST 7: request_body with chomp, request from eval
--- config
location = /b {
    content_by_lua_block {
        ngx.req.read_body()
        ngx.print(ngx.var.http_content_length, ":", ngx.req.get_body_data())
    }
}
--- request eval
"PUT /b"
--- request_body chomp
{"x": 1}
--- response_body chomp
8:{"x": 1}



=== TEST 8: raw_request, malformed
--- config
location = /t { return 200 "ok\n"; }
--- raw_request eval
"GET /t HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n"
--- error_code: 400
--- error_log
client sent invalid header line



=== TEST 9: raw_request with $TEST_NGINX_SERVER_PORT inside eval
--- config
location = /t { return 200 "$http_host\n"; }
--- raw_request eval
"GET /t HTTP/1.1\r\nHost: localhost:$TEST_NGINX_SERVER_PORT\r\nConnection: close\r\n\r\n"
--- response_body
localhost:$TEST_NGINX_SERVER_PORT



=== TEST 10: error_log sees this block's lines (1)
--- config
location = /log { content_by_lua_block { ngx.log(ngx.ERR, "marker: ", ngx.var.arg_m) ngx.say("logged") } }
--- init
push @main::init_pids, OpenBank::Test::nginx_pid();
--- request
GET /log?m=alpha
--- response_body
logged
--- error_log
marker: alpha
--- no_error_log
marker: beta



=== TEST 11: error_log sees this block's lines only (2)
--- config
location = /log { content_by_lua_block { ngx.log(ngx.ERR, "marker: ", ngx.var.arg_m) ngx.say("logged") } }
--- init
push @main::init_pids, OpenBank::Test::nginx_pid();
--- request
GET /log?m=beta
--- error_log eval
[qr/marker: b\w+a/, "marker: beta"]
--- no_error_log
marker: alpha



=== TEST 12: log lines written after the response, with wait
--- config
location = /t {
    return 200 "ok\n";
    log_by_lua_block { ngx.log(ngx.WARN, "log phase ran") }
}
--- request
GET /t
--- wait: 0.1
--- error_log
log phase ran



=== TEST 13: user_files, main_config, http_config
--- main_config
env TEST_HARNESS_GREETING;
--- http_config
lua_shared_dict harness 1m;
--- config
location /files/ { alias $TEST_NGINX_HTML_DIR/; }
location = /conf {
    content_by_lua_block {
        local f = assert(io.open("$TEST_NGINX_CONF_DIR/partners/acme.jwks.json"))
        ngx.print(f:read("*a"))
        f:close()
        ngx.say(os.getenv("TEST_HARNESS_GREETING"))
        ngx.say((ngx.shared.harness:incr("n", 1, 0)))
    }
}
--- user_files
>>> conf/partners/acme.jwks.json
{"keys": []}
>>> html/x.txt
hello file
--- request
GET /conf
--- response_body
{"keys": []}
hi from env
1
--- no_repeat



=== TEST 14: user_files are served
--- config
location /files/ { alias $TEST_NGINX_HTML_DIR/; }
--- user_files
>>> html/x.txt
hello file
--- request
GET /files/x.txt
--- response_body
hello file



=== TEST 15: must_die, eval regex with file and line
--- config
location = /t {
    return abc;
}
--- must_die
--- error_log eval
qr/invalid return code "abc" in \Q$TEST_NGINX_CONF_DIR\E\/nginx\.conf:23/



=== TEST 16: must_die, plain error_log line, no_error_log
--- http_config
lua_shared_dict harness 1m;
--- config
location = /t {
    client_max_body_size abc;
}
--- must_die
--- error_log
"client_max_body_size" directive invalid value in $TEST_NGINX_CONF_DIR/nginx.conf:24
--- no_error_log
invalid return code



=== TEST 17: an expected [alert] or [crit] is excused
--- config
location = /t {
    content_by_lua_block {
        ngx.log(ngx.CRIT, "expected critical")
        ngx.log(ngx.ALERT, "expected alert")
        ngx.say("ok")
    }
}
--- request
GET /t
--- error_log
expected critical
expected alert



=== TEST 18: allow_alert
--- config
location = /t { content_by_lua_block { ngx.log(ngx.ALERT, "whatever") ngx.say("ok") } }
--- request
GET /t
--- allow_alert



=== TEST 19: restart, workers, init, no_repeat
--- skip_valgrind
--- workers: 2
--- config
location = /t { content_by_lua_block { ngx.say(ngx.worker.count()) } }
--- restart
--- init
$main::seen_restart_block++;
--- request
GET /t
--- response_body
2
--- no_repeat



=== TEST 20: skip_asan and skip_valgrind blocks run normally
--- config
location = /t { return 204; }
--- request
HEAD /t
--- error_code: 204
--- response_body chomp
--- skip_asan
--- skip_valgrind



=== TEST 21: SKIP works (this block would fail)
--- config
location = /t { return 200; }
--- request
GET /t
--- error_code: 500
--- SKIP



=== TEST 22: keep-alive response completes without waiting for close
--- config
location = /t { return 200 "ka\n"; }
--- request
GET /t
--- more_headers
Connection: keep-alive
--- timeout: 3
--- response_body
ka
