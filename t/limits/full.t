# A zone with no room left for a new counter refuses the call with 503
# state_unavailable and an [alert]: never admitted unmetered.  Counters
# already there keep working.

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);

my $n = 1500;
my $http = "openbank_zone openbank 128k;\n"
    . "lua_shared_dict reached 1m;\n"
    . "openbank_plan p { rate 10r/m; quota payments 100/day; }\n";
$http .= "openbank_partner p$_ { plan p; scopes payments; api_key sha256:"
    . sha256_hex("key-$_") . "; }\n" for 1 .. $n;

my $config = <<'EOT';
location /v1/payments {
    openbank_auth     api_key;
    openbank_scope    payments;
    openbank_product  payments;
    content_by_lua_block {
        ngx.shared.reached:incr("n", 1, 0)
        ngx.say("paid")
    }
}
location = /reached {
    content_by_lua_block { ngx.say(ngx.shared.reached:get("n") or 0) }
}
EOT

start_nginx({ http_config => $http, config => $config, workers => 1 });

my ($served, $res) = (0);
for my $i (1 .. $n) {
    $res = http_request('GET', '/v1/payments', { 'X-API-Key' => "key-$i" });
    last if $res->status != 200;
    $served++;
}

diag("a 128k zone held the counters of $served partners");
ok($served > 50 && $served < $n, "the zone filled up after $served partners");
is($res->status, 503, 'the next partner is refused');
like($res->body, qr/"code":"state_unavailable"/, 'state_unavailable');
is(http_request('GET', '/reached')->body, "$served\n",
   'the refused call never reached the bank');
like(error_log_since(0),
     qr/\[alert\].*openbank zone "openbank" is full: no room for the \w+ counter of partner "p\d+", request refused/,
     'an [alert] says so');

# partners that have their counters keep being served and metered
$res = http_request('GET', '/v1/payments', { 'X-API-Key' => 'key-1' });
is($res->status, 200, 'partner 1 is still served');
like($res->header('RateLimit'), qr/"payments-day";r=98;/, 'and metered');

# Room comes back only as counters expire: the rate counters (10r/m: a
# bucket is full again 6 s after its last call) go, quotas stay.
sleep 7;
$res = http_request('GET', '/v1/payments', { 'X-API-Key' => 'key-' . ($served + 1) });
is($res->status, 200, 'expired rate counters made room for the next partner');
$res = http_request('GET', '/v1/payments', { 'X-API-Key' => 'key-1' });
like($res->header('RateLimit'), qr/"payments-day";r=97;/,
     'while the quota counters were kept');

stop_nginx();
done_testing();
