# Idempotency keys cluster-wide (docs/cluster.md, "Idempotency keys"):
# three gateways on one Redis in front of one bank that counts what
# reaches it.  The same key sent to all of them at once reaches the bank
# once, and every retry on any gateway gets the first answer byte for
# byte with Idempotent-Replayed; another body is 422 and a key at the
# bank is 409 across gateways; the owner gateway killed (kill -9) while
# the bank holds its request: another gateway takes the key over once the
# owner's lease lapses; a signed POST with a key (the nonce, then the
# key); a damaged answer and a key of another type in Redis never crash
# nor reach the bank.  An answer Redis could not take (Redis stopped
# while the bank held the request) is retried once Redis is back, its key
# held in flight meanwhile: the retry on another gateway is the replay and
# the bank was reached once; a reload meanwhile gives it up with a [warn]
# and the old worker exits.  Redis SIGSTOPped: idempotency=refuse answers a
# new key 503 state_unavailable with Retry-After within the timeout and
# never reaches the bank, idempotency=local goes on with the gateway's own
# zone; after SIGCONT, back without a restart.  On a 3-master Redis
# Cluster the record is on the master of the partner's slot.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Redis;
use OpenBank::Signer;
use Digest::SHA qw(sha256 sha256_hex);
use JSON::PP qw(decode_json);
use Time::HiRes qw(time sleep);

# the bank: counts each key it is sent, holds a request "hold" seconds
my $bank = start_gateway({
    no_module => 1,
    http_config => "lua_shared_dict bank 1m;\n",
    config => <<'EOT' });
location = /count {
    content_by_lua_block {
        ngx.say(ngx.shared.bank:get(ngx.var.arg_key) or 0)
    }
}
location / {
    content_by_lua_block {
        ngx.req.read_body()
        local key = ngx.var.http_idempotency_key or "-"
        local n = ngx.shared.bank:incr(key, 1, 0)
        local total = ngx.shared.bank:incr("#total", 1, 0)
        local hold = tonumber(ngx.var.http_x_hold or 0)
        if hold > 0 then ngx.sleep(hold) end
        if ngx.var.http_x_fail then
            ngx.status = 500
            ngx.say('{"error":"bank"}')
            return
        end
        ngx.status = 201
        ngx.header["Location"] = "/v1/payments/p" .. total
        ngx.header["Content-Type"] = "application/json"
        ngx.say('{"payment":"p', total, '","key":"', key, '","n":', n,
                ',"body":', ngx.req.get_body_data() or '""', '}')
    }
}
EOT

sub http ($cluster, $degraded = undef) {
    return "openbank_zone openbank 1m;\n"
        . "openbank_state \$TEST_NGINX_SERVROOT/state;\n"
        . "$cluster\n"
        . ($degraded ? "openbank_cluster_degraded $degraded;\n" : '')
        . "openbank_plan p { rate 1000r/s; quota payments 100000/day; }\n"
        . "openbank_clock_skew 300s;\n"
        . "openbank_partner acme { plan p; scopes payments; api_key sha256:"
        . sha256_hex('key-acme') . "; hmac_secret partners/acme.hmac; }\n"
        . "openbank_partner beta { plan p; scopes payments; api_key sha256:"
        . sha256_hex('key-beta') . "; }\n";
}

my $bank_port = $bank->port;
my $config = <<"EOT";
location /v1/ {
    openbank_auth         api_key;
    openbank_scope        payments;
    openbank_idempotency  required;
    proxy_pass            http://127.0.0.1:$bank_port;
    proxy_read_timeout    120s;
}
location /s/ {
    openbank_auth         api_key;
    openbank_scope        payments;
    openbank_signature    required;
    openbank_idempotency  required;
    proxy_pass            http://127.0.0.1:$bank_port;
}
location = /openbank/status { openbank_status; }
location = /metrics { openbank_metrics; }
EOT

my $secret = 'b3f1c2d4e5a6978812345678abcdef0123456789abcdef0123456789abcdef01';
my $files = [['conf/partners/acme.hmac', $secret]];
my $seq = 0;

# a signed POST with a key: the nonce and the key, both in Redis
sub signed_pay ($gw, $key, %o) {
    my $body = $o{body} // '{"amount":"7.00"}';
    my $nonce = $o{nonce} // sprintf('n-%d-%d', $$, ++$seq);
    my @h = sign_request(method => 'POST', path => '/s/payments',
                         authority => 'localhost', body => $body,
                         alg => 'hmac-sha256', key => $secret,
                         keyid => 'hmac', nonce => $nonce,
                         created => int(time) + 150);
    return $gw->request('POST', '/s/payments',
                        ['X-API-Key: key-acme', 'Host: localhost',
                         "Idempotency-Key: $key", @h], $body);
}

sub pay ($gw, $key, %o) {
    my $body = $o{body} // '{"amount":"12.50"}';
    my @h = ('X-API-Key: key-' . ($o{partner} // 'acme'),
             "Idempotency-Key: $key");
    push @h, "X-Hold: $o{hold}" if $o{hold};
    push @h, 'X-Fail: 1' if $o{fail};
    my $t0 = time;
    my $res = $gw->request('POST', $o{path} // '/v1/payments', \@h, $body);
    return wantarray ? ($res, time - $t0) : $res;
}

sub at_bank ($key) { 0 + $bank->request('GET', "/count?key=$key")->body }

sub code_of ($res) {
    my $j = eval { decode_json($res->body) } || {};
    $j->{code} // '';
}

sub replayed ($res) { ($res->header('Idempotent-Replayed') // '') eq 'true' }

sub status_of ($gw) {
    my $res = $gw->request('GET', '/openbank/status');
    return eval { decode_json($res->body)->{cluster} } || {};
}

sub poll ($cond, $limit) {
    return OpenBank::Test::Nginx::poll_until($limit, $cond);
}

# requests in child processes: their status, replay flag and body
sub at_once (@jobs) {
    my @kids;
    for my $job (@jobs) {
        pipe(my $r, my $w) or die;
        my $pid = fork // die;
        if (!$pid) {
            close $r;
            my $res = $job->();
            print {$w} join("\n", $res->status, replayed($res) ? 1 : 0,
                            code_of($res), $res->body);
            close $w;
            exit 0;
        }
        close $w;
        push @kids, [$pid, $r];
    }
    my @out;
    for my $k (@kids) {
        my $fh = $k->[1];
        local $/;
        my $text = <$fh> // '';
        waitpid $k->[0], 0;
        my ($status, $rp, $code, $body) = split /\n/, $text, 4;
        push @out, { status => $status // 0, replayed => $rp,
                     code => $code, body => $body // '' };
    }
    return @out;
}

# ---------------------------------------------------------------------
# one Redis, three gateways

my $redis = OpenBank::Redis->start;
my $dir = $redis->directive(timeout => '500ms', nodes => 3);

my $g1 = start_gateway({ http_config => http($dir), config => $config,
                         user_files => $files, workers => 2 });
my $g2 = start_gateway({ http_config => http($dir), config => $config,
                         user_files => $files });
my $g3 = start_gateway({ http_config => http($dir, 'idempotency=local'),
                         config => $config,
                         user_files => $files });
my @gws = ($g1, $g2, $g3);

ok(poll(sub { !grep { (status_of($_)->{state} // '') ne 'connected' } @gws },
        10), 'the three gateways are connected');

# one key sent to the three gateways at once, the bank slow to answer:
# one reaches the bank, the others are in flight elsewhere (409)
{
    my @res = at_once(map { my $g = $_; sub { pay($g, 'race-1', hold => 1) } }
                      @gws, @gws);
    my @ok = grep { $_->{status} == 201 && !$_->{replayed} } @res;
    is(scalar(@ok), 1, 'at once on three gateways: one answer of the bank')
        or diag(join ' ', map { $_->{status} } @res);
    is(scalar(grep { $_->{status} == 409
                     && $_->{code} eq 'idempotency_in_flight' } @res), 5,
       'at once: the others are 409 idempotency_in_flight');
    is(at_bank('race-1'), 1, 'at once: the bank was reached once');

    my $first = $ok[0]{body} // '';
    for my $i (0 .. $#gws) {
        my $res = pay($gws[$i], 'race-1');
        is($res->status, 201, "retry on gateway " . ($i + 1) . ": 201");
        ok(replayed($res), "retry on gateway " . ($i + 1)
           . ": Idempotent-Replayed");
        is($res->body, $first, "retry on gateway " . ($i + 1)
           . ": the first body, byte for byte");
        like($res->header('Location') // '', qr{^/v1/payments/p\d+$},
             "retry on gateway " . ($i + 1) . ": the first Location");
    }
    is(at_bank('race-1'), 1, 'retries: the bank was not reached again');
}

# identical requests at once, every one a replay of a key already answered
my $seq_body;
{
    my $r0 = pay($g2, 'seq-1');
    is($r0->status, 201, 'a new key on gateway 2') or diag($r0->body);
    ok(!replayed($r0), 'not a replay');
    my @res = at_once(map { my $g = $_; sub { pay($g, 'seq-1') } }
                      (@gws) x 3);
    is(scalar(grep { $_->{status} == 201 && $_->{replayed}
                     && $_->{body} eq $r0->body } @res), 9,
       'nine retries at once on three gateways: nine replays');
    is(at_bank('seq-1'), 1, 'the bank was reached once');
    $seq_body = $r0->body;
    is($redis->call('HEXISTS', 'ob:idem:{acme}:seq-1', 'resp'), 1,
       'the answer is in Redis, under the partner\'s hash tag');
    my $pttl = $redis->call('PTTL', 'ob:idem:{acme}:seq-1');
    ok($pttl > 86_000_000 && $pttl <= 86_400_000,
       "the record lives 24 hours ($pttl ms)");
}

# another body or path with the key on another gateway: 422
{
    my $res = pay($g3, 'seq-1', body => '{"amount":"99.99"}');
    is($res->status, 422, 'another body on gateway 3: 422');
    is(code_of($res), 'idempotency_key_reused', 'idempotency_key_reused');
    $res = pay($g1, 'seq-1', path => '/v1/payments?x=1');
    is($res->status, 422, 'another path on gateway 1: 422');
    is(at_bank('seq-1'), 1, 'the bank was not reached');

    # the same key of another partner is its own
    $res = pay($g1, 'seq-1', partner => 'beta');
    is($res->status, 201, 'another partner\'s key is its own');
    ok(!replayed($res), 'not a replay');
}

# a key at the bank on gateway 1: 409 on the others, then the replay
{
    my ($slow) = fork // die;
    if (!$slow) { pay($g1, 'slow-1', hold => 2); exit 0 }
    ok(poll(sub { at_bank('slow-1') == 1 }, 10), 'slow: at the bank');
    for my $g ($g2, $g3) {
        my $res = pay($g, 'slow-1');
        is($res->status, 409, 'slow: 409 on another gateway');
        is(code_of($res), 'idempotency_in_flight', 'idempotency_in_flight');
    }
    my $res = pay($g2, 'slow-1', body => '{"other":1}');
    is($res->status, 422, 'slow: another body is 422 while in flight too');
    waitpid $slow, 0;
    $res = pay($g2, 'slow-1');
    is($res->status, 201, 'slow: then the replay on gateway 2');
    ok(replayed($res), 'slow: Idempotent-Replayed');
    is(at_bank('slow-1'), 1, 'slow: the bank was reached once');
}

# a 5xx of the bank is not kept: the key is released everywhere
{
    my $res = pay($g1, 'fail-1', fail => 1);
    is($res->status, 500, 'the bank fails: 500');
    is($redis->call('EXISTS', 'ob:idem:{acme}:fail-1'), 0,
       'the record is released in Redis');
    $res = pay($g2, 'fail-1');
    is($res->status, 201, 'a retry on gateway 2 goes to the bank');
    ok(!replayed($res), 'not a replay');
    is(at_bank('fail-1'), 2, 'the bank was asked twice');
}

# the owner gateway killed while the bank holds its request: after its
# lease lapses another gateway takes the key over
{
    my $g4 = start_gateway({ http_config => http($dir), config => $config,
                         user_files => $files });
    ok(poll(sub { (status_of($g4)->{state} // '') eq 'connected' }, 10),
       'takeover: a fourth gateway is connected');
    my $pid = fork // die;
    if (!$pid) { pay($g4, 'orphan-1', hold => 60); exit 0 }
    ok(poll(sub { at_bank('orphan-1') == 1 }, 10),
       'takeover: the request is at the bank');
    is(pay($g2, 'orphan-1')->status, 409, 'takeover: 409 while the owner lives');
    $g4->kill;
    kill 'KILL', $pid;
    waitpid $pid, 0;
    my $off = $g2->error_log_offset;
    my $res;
    ok(poll(sub { $res = pay($g2, 'orphan-1'); $res->status != 409 }, 30),
       'takeover: once the lease lapsed, another gateway takes the key');
    is($res->status, 201, 'takeover: the bank answers it');
    is(at_bank('orphan-1'), 2, 'takeover: the bank was asked again '
       . '(its own key decides)');
    like($g2->error_log_since($off), qr/taking over an idempotency key/,
         'takeover: a [warn] says so');
    $res = pay($g1, 'orphan-1');
    ok(replayed($res), 'takeover: then the replay on gateway 1');
}

# a signed POST with a key: the nonce once, then the key, across gateways
{
    my $res = signed_pay($g1, 'signed-1', nonce => 'sn-1');
    is($res->status, 201, 'signed: a new key on gateway 1') or diag($res->body);
    ok(!replayed($res), 'signed: not a replay');
    my $first = $res->body;
    $res = signed_pay($g2, 'signed-1', nonce => 'sn-1');
    is($res->status, 401, 'signed: the same signature on gateway 2 is a '
       . 'replayed nonce');
    is(code_of($res), 'replayed_request', 'signed: replayed_request');
    $res = signed_pay($g2, 'signed-1');
    is($res->status, 201, 'signed: a fresh signature, the same key, on '
       . 'gateway 2: the replay');
    ok(replayed($res), 'signed: Idempotent-Replayed');
    is($res->body, $first, 'signed: the first body');
    is(at_bank('signed-1'), 1, 'signed: the bank was reached once');
}

# what Redis holds is not trusted blindly: a damaged answer, a key of
# another type, never a crash, never the bank reached unchecked
{
    my $body = '{"amount":"12.50"}';
    my $fp = sha256("POST\n/v1/payments\n" . sha256($body));
    $redis->call('HSET', 'ob:idem:{acme}:evil-1', 'fp', $fp, 'owner', '',
                 'resp', "\x01\x02garbage");
    my $res = pay($g1, 'evil-1', body => $body);
    is($res->status, 500, 'a damaged answer in Redis: 500');
    like($res->header('Content-Type') // '', qr{application/problem\+json},
         'a damaged answer: a problem');
    is(at_bank('evil-1'), 0, 'a damaged answer: the bank is not reached');
    $redis->call('SET', 'ob:idem:{acme}:evil-2', 'a string');
    $res = pay($g1, 'evil-2');
    is($res->status, 503, 'a key of another type: 503 (refuse)');
    is(code_of($res), 'state_unavailable', 'state_unavailable');
    is(at_bank('evil-2'), 0, 'a key of another type: not at the bank');
    ok($g1->alive, 'gateway 1 is alive');
}

# the store of an answer fails (Redis stopped while the bank holds the
# request, and known down by the gateway when the bank answers): the
# answer goes out, and is tried again, its lease renewed, until Redis is
# back; a retry on another gateway meanwhile is 409, then the replay of
# the first answer, and the bank was reached once
{
    my $rkey = 'ob:idem:{acme}:store-1';
    pipe(my $rd, my $wr) or die;
    my $pid = fork // die;
    if (!$pid) {
        close $rd;
        my $res = pay($g1, 'store-1', hold => 3);
        print {$wr} join("\n", $res->status, $res->body);
        close $wr;
        exit 0;
    }
    close $wr;
    ok(poll(sub { at_bank('store-1') == 1 }, 10), 'store: at the bank');
    # the owner's first renewal (1 s after the take) holds it for 10 s
    ok(poll(sub {
            my $lease = $redis->call('HGET', $rkey, 'lease') // 0;
            my $t = $redis->call('TIME');
            $lease - ($t->[0] * 1000 + int($t->[1] / 1000)) > 5000 }, 10),
       'store: the owner\'s lease is renewed');
    my $off = $g1->error_log_offset;
    $redis->stop;
    # a call without an answer: Redis is down for every worker from now
    is(pay($g1, 'store-x')->status, 503, 'store: Redis stopped: 503');
    my ($status, $body) = do {
        local $/;
        split /\n/, <$rd> // '', 2;
    };
    waitpid $pid, 0;
    is($status, 201, 'store: the answer of the bank goes out')
        or diag($body);
    is(pay($g2, 'store-1')->status, 503,
       'store: gateway 2 cannot ask Redis either (503)');
    $redis->cont;
    my $res;
    my @seen;
    ok(poll(sub { $res = pay($g2, 'store-1'); push @seen, $res->status;
                  $res->status != 409 && $res->status != 503 }, 30),
       'store: Redis back, a retry on gateway 2 is answered');
    is($res->status, 201, 'store: 201') or diag("@seen");
    ok(replayed($res), 'store: the replay (Idempotent-Replayed)');
    is($res->body, $body, 'store: the first answer, byte for byte');
    is(at_bank('store-1'), 1, 'store: the bank was reached once');
    ok(!grep({ $_ != 409 && $_ != 503 && $_ != 201 } @seen),
       'store: meanwhile only 409 (in flight) or 503') or diag("@seen");
    is($redis->call('HEXISTS', $rkey, 'resp'), 1,
       'store: the answer is in Redis');
    my $log = $g1->error_log_since($off);
    like($log, qr/answer to an idempotency key is in redis, at try \d+/,
         'store: a notice says when Redis took it');
    unlike($log, qr/kept by this gateway only/, 'store: no answer given up');
    my $m = $g1->request('GET', '/metrics')->body;
    like($m, qr/^openbank_cluster_idempotency_stores_total\{outcome="retried"\} 1$/m,
         'store: metrics count the answer taken on a retry');
    like($m, qr/^openbank_cluster_idempotency_waiting 0$/m,
         'store: none waits any more');
    is(status_of($g1)->{idempotency_waiting}, 0,
       'store: the status says none waits');
}

# the same with a reload while Redis is still away: the old worker gives
# the waiting answer a last try, gives it up with the [warn], and exits
{
    my $rkey = 'ob:idem:{acme}:store-2';
    pipe(my $rd, my $wr) or die;
    my $pid = fork // die;
    if (!$pid) {
        close $rd;
        print {$wr} pay($g1, 'store-2', hold => 3)->status;
        close $wr;
        exit 0;
    }
    close $wr;
    ok(poll(sub { at_bank('store-2') == 1 }, 10), 'reload: at the bank');
    ok(poll(sub {
            my $lease = $redis->call('HGET', $rkey, 'lease') // 0;
            my $t = $redis->call('TIME');
            $lease - ($t->[0] * 1000 + int($t->[1] / 1000)) > 5000 }, 10),
       'reload: the owner\'s lease is renewed');
    my $off = $g1->error_log_offset;
    my @old = $g1->worker_pids;
    $redis->stop;
    is(pay($g1, 'store-y')->status, 503, 'reload: Redis stopped: 503');
    my $status = do { local $/; <$rd> // '' };
    waitpid $pid, 0;
    is($status, 201, 'reload: the answer of the bank goes out');
    ok(poll(sub { (status_of($g1)->{idempotency_waiting} // 0) == 1 }, 10),
       'reload: the status says one answer waits');
    ok($g1->reload, 'reload while an answer waits for Redis');
    ok(poll(sub { !grep { kill 0, $_ } @old }, 30),
       'reload: the old workers exit');
    my $log = $g1->error_log_since($off);
    like($log, qr/answer to an idempotency key is kept by this gateway only: redis (is unavailable|did not take it) as the worker ends/,
         'reload: the answer is given up with a [warn]');
    unlike($log, qr/\[alert\]|signal (11|6)/, 'reload: no crash');
    $redis->cont;
    is(status_of($g1)->{idempotency_waiting}, 0, 'reload: none waits');
    like($g1->request('GET', '/metrics')->body,
         qr/^openbank_cluster_idempotency_stores_total\{outcome="lost"\} 1$/m,
         'reload: metrics count the answer given up');
    ok(poll(sub { (status_of($g1)->{state} // '') eq 'connected' }, 10),
       'reload: connected again');
}

# ---------------------------------------------------------------------
# Redis SIGSTOPped

$redis->stop;

{
    my ($res, $took) = pay($g1, 'stopped-1');
    is($res->status, 503, 'stopped: idempotency=refuse: 503');
    is(code_of($res), 'state_unavailable', 'stopped: state_unavailable');
    ok(($res->header('Retry-After') // '') =~ /^\d+$/, 'stopped: Retry-After');
    ok($took < 2, "stopped: answered within a generous bound ($took s)");
    ($res, $took) = pay($g2, 'stopped-1');
    is($res->status, 503, 'stopped: gateway 2 too');
    ok($took < 2, "stopped: within the bound ($took s)");
    is(at_bank('stopped-1'), 0, 'stopped: refused keys never reach the bank');

    # an answer this gateway kept is replayed from its own zone
    $res = pay($g2, 'seq-1');
    ok(replayed($res), 'stopped: an answer gateway 2 kept is replayed');
    $res = pay($g1, 'seq-1');
    ok(replayed($res), 'stopped: an answer gateway 1 replayed from Redis '
       . 'is replayed from its own zone');
    is($res->body, $seq_body, 'stopped: the first body');

    ($res, $took) = pay($g3, 'stopped-2');
    is($res->status, 201, 'stopped: idempotency=local: to the bank');
    ok($took < 2, "stopped: within the bound ($took s)");
    $res = pay($g3, 'stopped-2');
    ok(replayed($res), 'stopped: idempotency=local: replayed by that gateway');
    is(at_bank('stopped-2'), 1, 'stopped: local: the bank was reached once');

    ok(poll(sub { (status_of($g1)->{state} // '') eq 'degraded' }, 5),
       'stopped: the status says degraded');
    like($g1->request('GET', '/metrics')->body,
         qr/^openbank_cluster_degraded_total\{kind="idempotency",decision="refuse"\} [1-9]/m,
         'stopped: metrics count the refusals');
    like($g3->request('GET', '/metrics')->body,
         qr/^openbank_cluster_degraded_total\{kind="idempotency",decision="local"\} [1-9]/m,
         'stopped: metrics count the local decisions');
}

$redis->cont;

{
    my $res;
    ok(poll(sub { $res = pay($g1, 'back-1'); $res->status == 201 }, 10),
        'continued: a new key goes to the bank again without a restart');
    # the other gateway finds Redis back by its own probe (within 1 s):
    # until then its idempotency=refuse answers 503, never the bank
    ok(poll(sub { $res = pay($g2, 'back-1'); replayed($res) }, 5),
       'continued: replayed on another gateway');
    is(at_bank('back-1'), 1, 'continued: the bank was reached once');
    # a take Redis ran late, once continued, holds the key for its
    # first lease (2 s) at most: nobody renews it
    ok(poll(sub { $res = pay($g1, 'stopped-1'); $res->status != 409 }, 10),
       'continued: a key refused meanwhile is free again');
    is($res->status, 201, 'continued: it goes to the bank');
    ok(!replayed($res), 'continued: not a replay');
}

$_->stop for @gws;
undef $redis;

# ---------------------------------------------------------------------
# a Redis Cluster: 3 masters and their replicas

my $rc = OpenBank::Redis->start(cluster => 1);
my $slot_master = $rc->master_for_key('{acme}');
my ($other) = grep { $_ != $slot_master } $rc->masters;
my $cdir = "openbank_cluster redis://127.0.0.1:$other timeout=200ms nodes=2;";

my $c1 = start_gateway({ http_config => http($cdir), config => $config,
                         user_files => $files });
my $c2 = start_gateway({ http_config => http($cdir), config => $config,
                         user_files => $files });

ok(poll(sub { !grep { (status_of($_)->{state} // '') ne 'connected' }
              $c1, $c2 }, 10), 'cluster: connected');

{
    my @res = at_once(map { my $g = $_; sub { pay($g, 'c-1', hold => 1) } }
                      $c1, $c2, $c1, $c2);
    is(scalar(grep { $_->{status} == 201 && !$_->{replayed} } @res), 1,
       'cluster: at once on two gateways: one answer of the bank')
        or diag(join ' ', map { $_->{status} } @res);
    is(at_bank('c-1'), 1, 'cluster: the bank was reached once');
    my $res = pay($c2, 'c-1');
    ok(replayed($res), 'cluster: replayed on gateway 2');
    $res = pay($c1, 'c-1');
    ok(replayed($res), 'cluster: replayed on gateway 1');
    is($rc->call_at($slot_master, 'HEXISTS', 'ob:idem:{acme}:c-1', 'resp'), 1,
       'cluster: the record is on the master of the partner\'s slot');
    $res = pay($c2, 'c-1', body => '{}');
    is($res->status, 422, 'cluster: another body: 422');
}

$_->stop for $c1, $c2;

done_testing();
