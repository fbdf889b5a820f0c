# The counters file is input too: hostile or malformed lines under a valid
# checksum are skipped one by one (logged), the good ones restored; expired
# windows are dropped; a missing file is a clean start.

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use JSON::PP qw(decode_json);

my $state = servroot() . '/state';

my $http = "openbank_zone openbank 1m;\n"
    . "openbank_state $state;\n"
    . "openbank_plan p { rate 1r/m burst=5; quota payments 10/day; }\n"
    . join('', map {
        "openbank_partner $_ { plan p; scopes payments; api_key sha256:"
        . sha256_hex("key-$_") . "; }\n" } qw(acme globex initech));

my $config = <<'EOT';
location /v1/payments {
    openbank_auth     api_key;
    openbank_scope    payments;
    openbank_product  payments;
    content_by_lua_block { ngx.say("paid") }
}
location = /openbank/status { openbank_status; }
EOT

sub status_of ($who) {
    my $s = decode_json(http_request('GET', '/openbank/status')->body);
    my ($p) = grep { $_->{name} eq $who } @{ $s->{partners} };
    return $p;
}

sub write_snapshot (@lines) {
    make_path($state);
    my $body = "openbank-counters 1\n" . join('', map { "$_\n" } @lines);
    open my $fh, '>', "$state/counters" or die;
    print $fh $body, 'sha256 ', sha256_hex($body), "\n";
    close $fh;
}

# the day window of now in UTC (no openbank_timezone: UTC)
my $day = int(time / 86400) * 86400;
my $end_ms = ($day + 86400) * 1000;
my $future_ns = (time + 45) * 1_000_000_000;

# no file at all: a clean start
my $offset = error_log_offset();
start_nginx({ http_config => $http, config => $config });
like(error_log_since($offset), qr/\[notice\].*no counters to restore in ".*\/state\/counters"/,
     'no file: a notice, a clean start');
stop_nginx();

write_snapshot(
    "quota acme/payments/day/$day $end_ms 7",           # good
    "rate globex $future_ns 12000000000",               # good: 45 s of debt
    "rate initech 9223372036854775807 1",               # absurd, but well-formed
    "quota initech/payments/day/" . ($day - 86400) . " " . ($day * 1000) . " 9",
                                                        # yesterday: expired
    "quota acme/payments/day/$day $end_ms",             # a field missing
    "quota acme/payments/day/$day $end_ms 7 8",         # one too many
    "quota acme/pay ments/day/$day $end_ms 7",          # a space in the key
    "quota acme/payments/day/$day $end_ms -7",          # negative
    "quota acme/payments/day/$day $end_ms 99999999999999999999999",  # huge
    "quota acme/\x{1}\"<script>/day/$day $end_ms 1",     # hostile bytes
    "quota " . ('a' x 300) . " $end_ms 1",              # oversized key
    "token acme $end_ms 1",                              # unknown kind
    "",                                                  # empty line
);

$offset = error_log_offset();
start_nginx({ http_config => $http, config => $config });
my $log = error_log_since($offset);
my $malformed = () = $log =~ /\[error\].*malformed line in the counters file: ignored/g;
is($malformed, 9, 'each malformed line is logged (9)');
like($log, qr/\[notice\].*3 counters restored from ".*\/state\/counters"/,
     'the three well-formed lines are restored');
unlike($log, qr/\[(alert|crit|emerg)\]/, 'nothing worse');

my ($q) = grep { $_->{product} eq 'payments' } @{ status_of('acme')->{quotas} };
is($q->{used}, 7, 'acme: 7 used, from the file');
($q) = grep { $_->{product} eq 'payments' } @{ status_of('initech')->{quotas} };
is($q->{used}, 0, "initech: yesterday's count is not today's");

my $g = status_of('globex')->{rate};
ok($g->{remaining} <= 1, "globex: the debt of the rate is restored ($g->{remaining} left)");

my $res = http_request('GET', '/v1/payments', { 'X-API-Key' => 'key-initech' });
is($res->status, 429, 'initech: an absurd rate state limits, and crashes nothing');
like($res->header('Retry-After'), qr/^\d+$/, 'with a Retry-After');

$res = http_request('GET', '/v1/payments', { 'X-API-Key' => 'key-acme' });
is($res->status, 200, 'acme is served');
like($res->header('RateLimit'), qr/"payments-day";r=2;/, 'with 2 left');

stop_nginx();
done_testing();
