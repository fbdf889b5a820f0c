# A call refused by a breaker or a concurrency limit takes no quota unit
# and leaves its Idempotency-Key free: sent again later, the same request
# runs normally (docs/resilience.md, "What a refusal costs").

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Time::HiRes qw(sleep);

my $http = <<"EOT";
openbank_zone      openbank 1m;
openbank_state     \$TEST_NGINX_SERVROOT/state;
lua_shared_dict    bank 1m;
openbank_plan p { rate 1000r/s; quota payments 3/day; }
openbank_partner acme {
    plan     p;
    scopes   payments;
    api_key  sha256:@{[ sha256_hex('key-acme') ]};
}
openbank_breaker   core minimum=2 open=1s probes=1;
openbank_concurrency one 1;
upstream bank { server 127.0.0.1:\$TEST_NGINX_SERVER_PORT; }
EOT

my $config = <<'EOT';
location /v1/payments {
    openbank_auth         api_key;
    openbank_scope        payments;
    openbank_product      payments;
    openbank_idempotency  optional;
    openbank_breaker      core;
    proxy_pass            http://bank/bank;
}
location /v2/payments {
    openbank_auth         api_key;
    openbank_scope        payments;
    openbank_product      payments;
    openbank_idempotency  optional;
    openbank_concurrency  one;
    proxy_pass            http://bank/bank;
}
location /hold { openbank_concurrency one; proxy_pass http://bank/slow; }
location = /slow { content_by_lua_block { ngx.sleep(1) ngx.say("slow") } }
location = /v3 {
    openbank_breaker      core;
    openbank_concurrency  one;
    proxy_pass            http://bank/bank;
}
location = /openbank/status { openbank_status; }
location /trip { openbank_breaker core; proxy_pass http://bank/fail; }
location = /bank {
    content_by_lua_block {
        ngx.shared.bank:incr("hits", 1, 0)
        ngx.req.read_body()
        ngx.status = 201
        ngx.say("paid ", ngx.req.get_body_data())
    }
}
location = /fail { return 500; }
location = /hits {
    content_by_lua_block { ngx.say(ngx.shared.bank:get("hits") or 0) }
}
EOT

start_nginx({ http_config => $http, config => $config, workers => 2 });
my $log = error_log_offset();

sub pay ($key, $body, $v = 'v1') {
    return http_request(POST => "/$v/payments",
                        { 'X-API-Key' => 'key-acme',
                          'Idempotency-Key' => $key }, $body);
}
sub hits () { 0 + http_request(GET => '/hits')->body }
sub quota_left ($res) {
    return ($res->header('RateLimit') // '') =~ /"payments-day";r=(\d+)/
           ? $1 : undef;
}

# the one slot of "one" taken by a slow call, seen in the status
sub hold () {
    system("curl -s -o /dev/null http://127.0.0.1:@{[ server_port() ]}/hold &");
    for (1 .. 50) {
        my ($l) = grep { $_->{name} eq 'one' }
                  @{ decode_json(http_request(GET => '/openbank/status')
                                 ->body)->{concurrency} };
        return if $l->{in_flight} == 1;
        sleep(0.1);
    }
    fail('the slow call holds the slot');
}

is(http_request(GET => '/trip')->status, 500, 'a failure') for 1 .. 2;
sleep(0.2);    # a call counts once it ends: its log phase

my $res = pay('key-1', 'first');
is($res->status, 503, 'the breaker is open: 503');
is(decode_json($res->body)->{code}, 'circuit_open', 'circuit_open');
ok($res->header('Retry-After'), 'with Retry-After');
is(quota_left($res), 3, 'no quota unit taken: 3 of 3 left');
is(hits(), 0, 'the bank saw nothing');

$res = pay('key-1', 'first');
is($res->status, 503, 'refused again, not 409: the key was not taken');
is(decode_json($res->body)->{code}, 'circuit_open', 'circuit_open');

sleep(1.2);

$res = pay('key-1', 'first');
is($res->status, 201, 'half-open: the same request runs normally');
is($res->body, "paid first\n", "the bank's answer");
ok(!$res->header('Idempotent-Replayed'), 'not a replay');
is(quota_left($res), 2, 'one unit taken, by the call that ran');
is(hits(), 1, 'the bank saw it once');

$res = pay('key-1', 'first');
is($res->status, 201, 'the key now holds that answer');
is($res->header('Idempotent-Replayed'), 'true', 'replayed');
is(hits(), 1, 'without the bank');

$res = pay('key-1', 'other');
is($res->status, 422, 'and another body with it is refused');

# --- the concurrency limit: its one slot held by a slow call

hold();
$res = pay('key-2', 'second', 'v2');
is($res->status, 503, 'the one slot is taken: 503');
is(decode_json($res->body)->{code}, 'overloaded', 'overloaded');
is(quota_left($res), 2, 'no quota unit taken: still 2 left');
is(hits(), 1, 'the bank saw nothing more');
sleep(1);
$res = pay('key-2', 'second', 'v2');
is($res->status, 201, 'the slot free: the same request runs normally');
ok(!$res->header('Idempotent-Replayed'), 'not a replay');
is(quota_left($res), 1, 'one unit taken, by the call that ran');
is(hits(), 2, 'the bank saw it once');

# --- a probe refused by a later check is given back: the next call probes

is(http_request(GET => '/trip')->status, 500, 'a failure') for 1 .. 2;
sleep(1.2);
hold();
$res = http_request(GET => '/v3');
is($res->status, 503, 'half-open: the probe is admitted by the breaker, '
   . 'then refused by the concurrency limit');
is(decode_json($res->body)->{code}, 'overloaded', 'overloaded');
sleep(0.2);
my ($b) = grep { $_->{name} eq 'core' }
          @{ decode_json(http_request(GET => '/openbank/status')->body)
             ->{breakers} };
is($b->{state}, 'half_open', 'still half-open');
is($b->{probes}{taken}, 0, 'its probe given back');
sleep(1);
is(http_request(GET => '/v3')->status, 201, 'the next call is the probe');
sleep(0.2);
is(http_request(GET => '/v3')->status, 201, 'it succeeded: closed');
like(error_log_since($log), qr/breaker "core" closed: 1 probe calls succeeded/,
     'logged');

unlike(join('', grep { /\[(alert|crit|emerg)\]/ } split /^/,
                  error_log_since($log)), qr/./, 'no [alert]');

stop_nginx();
done_testing();
