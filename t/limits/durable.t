# Usage survives what operators do: reloads that raise or lower limits,
# a partner removed and added back, a full restart, a kill -9 (at most one
# snapshot interval lost), and a corrupt or truncated counters file.

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);
use JSON::PP qw(decode_json);

my $state = servroot() . '/state';

sub http_config (%o) {
    my $quota = $o{quota} // 10;
    my $conf = "openbank_zone openbank 1m;\n"
        . "openbank_state $state interval=500ms;\n"
        . "openbank_timezone +08:00;\n"
        . "openbank_plan p { rate " . ($o{rate} // '1000r/s') . ";"
        . " quota payments $quota/day; quota accounts 1000/month; }\n";
    for my $name (@{ $o{partners} // ['acme', 'globex'] }) {
        $conf .= "openbank_partner $name { plan p; scopes payments accounts; "
            . "api_key sha256:" . sha256_hex("key-$name") . "; }\n";
    }
    return $conf;
}

my $config = <<'EOT';
location /v1/payments {
    openbank_auth     api_key;
    openbank_scope    payments;
    openbank_product  payments;
    content_by_lua_block { ngx.say("paid") }
}
location = /openbank/status { openbank_status; }
EOT

sub pay ($who = 'acme') {
    return http_request('GET', '/v1/payments', { 'X-API-Key' => "key-$who" });
}

sub used ($who = 'acme') {
    my $s = decode_json(http_request('GET', '/openbank/status')->body);
    for my $p (@{ $s->{partners} }) {
        next unless $p->{name} eq $who;
        for my $q (@{ $p->{quotas} }) {
            return $q if $q->{product} eq 'payments';
        }
    }
    return undef;
}

sub remaining_header ($res) {
    return $res->header('RateLimit') =~ /"payments-day";r=(\d+)/ ? $1 : undef;
}

start_nginx({ http_config => http_config(), config => $config, workers => 2 });

is(pay()->status, 200, 'call') for 1 .. 6;
is(used()->{used}, 6, 'six used of ten');

# A raised quota gives back exactly the difference.
ok(reload_nginx({ http_config => http_config(quota => 15), config => $config,
                  workers => 2 }), 'reload: quota 10 -> 15');
my $res = pay();
is($res->status, 200, 'served after the reload');
is(remaining_header($res), 8, 'remaining = 15 - 7: the usage was kept');

# A lowered quota below the usage refuses at once.
ok(reload_nginx({ http_config => http_config(quota => 5), config => $config,
                  workers => 2 }), 'reload: quota 15 -> 5');
$res = pay();
is($res->status, 429, 'over the lowered quota');
like($res->body, qr/"code":"quota_exceeded"/, 'quota_exceeded');
is(used()->{used}, 7, 'the refused call did not count');
is(used()->{remaining}, 0, 'remaining 0, never negative');

# Raised again: exactly the difference is back.
ok(reload_nginx({ http_config => http_config(quota => 9), config => $config,
                  workers => 2 }), 'reload: quota 5 -> 9');
is(pay()->status, 200, 'call') for 1 .. 2;
is(pay()->status, 429, 'then the quota (9) is reached');

# A rate change on reload keeps the rate's state too.
ok(reload_nginx({ http_config => http_config(quota => 9, rate => '2r/m'),
                  config => $config, workers => 2 }), 'reload: rate 2r/m');
is(pay('globex')->status, 200, 'globex: first call');
is(pay('globex')->status, 200, 'globex: second call (burst 2)');
is(pay('globex')->status, 429, 'globex: the burst of the new rate is spent');
ok(reload_nginx({ http_config => http_config(quota => 9, rate => '2r/m'),
                  config => $config, workers => 2 }), 'the same reload again');
is(pay('globex')->status, 429, 'the rate state is kept across the reload');
ok(reload_nginx({ http_config => http_config(quota => 9), config => $config,
                  workers => 2 }), 'reload: back to 1000r/s');

# A partner removed and added back within the window keeps its usage.
ok(reload_nginx({ http_config => http_config(quota => 9,
                                              partners => ['globex']),
                  config => $config, workers => 2 }), 'reload without acme');
is(pay()->status, 401, 'acme is gone');
ok(reload_nginx({ http_config => http_config(quota => 9), config => $config,
                  workers => 2 }), 'reload with acme again');
is(used()->{used}, 9, 'acme is back with its usage');
is(pay()->status, 429, 'and its quota is still spent');

# A full restart (graceful stop, start) keeps the usage.
stop_nginx();
ok(-s "$state/counters", 'the counters were written at exit');
start_nginx({ http_config => http_config(quota => 9), config => $config,
              workers => 2 });
is(used()->{used}, 9, 'acme: usage kept across the restart');
is(used('globex')->{used}, 2, 'globex too');
is(pay()->status, 429, 'acme: still over its quota');

# kill -9 of master and workers: what was snapshotted more than an
# interval ago is kept; at most the last interval is lost.
is(pay('globex')->status, 200, 'globex: call') for 1 .. 3;
sleep 2;    # four intervals of 500ms
is(pay('globex')->status, 200, 'globex: call just before the crash');
kill_nginx();
start_nginx({ http_config => http_config(quota => 9), config => $config,
              workers => 2 });
my $g = used('globex')->{used};
ok($g >= 5 && $g <= 6, "globex after kill -9: $g (5 kept, the last may be lost)");

# The cache manager process writes the snapshots: when its master is
# killed, it leaves instead of writing a dead zone over the next nginx's.
my @children = worker_pids();
my ($manager) = grep {
    (do { local (@ARGV, $/) = "/proc/$_/cmdline"; <> } // '') =~ /cache manager/
} @children;
ok($manager, 'a cache manager process writes the snapshots');
kill KILL => nginx_pid(), grep { $_ != $manager } @children;
my $gone = 0;
for (1 .. 50) {
    waitpid $manager, 1;    # WNOHANG: the harness adopts orphans
    my $stat = -e "/proc/$manager/stat"
        ? do { local (@ARGV, $/) = "/proc/$manager/stat"; <> } // '' : '';
    if ($stat !~ /\)\s+[^Z]/) { $gone = 1; last }
    select undef, undef, undef, 0.1;
}
ok($gone, 'the orphaned cache manager left on its own');
kill_nginx();
start_nginx({ http_config => http_config(quota => 9), config => $config,
              workers => 2 });
is(used('globex')->{used}, $g, 'the counters are those it had');

# A corrupt current snapshot: logged, set aside, the previous one is used.
stop_nginx();
open my $fh, '>', "$state/counters" or die;
print $fh "openbank-counters 1\nquota acme/payments/day/0 99999999999999 1\n";
close $fh;
my $offset = error_log_offset();
start_nginx({ http_config => http_config(quota => 9), config => $config,
              workers => 2 });
my $log = error_log_since($offset);
like($log, qr/\[error\].*counters file ".*\/state\/counters" is corrupt or truncated \(bad checksum\): set aside as ".*counters\.corrupt\.\d+"/,
     'the corrupt file is logged');
like($log, qr/\[warn\].*counters restored from the previous snapshot/,
     'and the previous snapshot is used');
my @aside = glob("$state/counters.corrupt.*");
is(scalar @aside, 1, 'the corrupt file was set aside, not deleted');
is(used()->{used}, 9, 'acme: usage kept from the previous snapshot');
is(pay()->status, 429, 'no silent reset');

# Both snapshots truncated: logged, counters start from zero, no crash.
stop_nginx();
for my $f ("$state/counters", "$state/counters.prev") {
    my $data = do { local (@ARGV, $/) = $f; <> };
    open my $out, '>', $f or die;
    print $out substr($data, 0, length($data) - 10);
    close $out;
}
$offset = error_log_offset();
start_nginx({ http_config => http_config(quota => 9), config => $config,
              workers => 2 });
$log = error_log_since($offset);
like($log, qr/\[alert\].*no valid counters snapshot under ".*state": rate and quota counters start from zero/,
     'both truncated: an alert says the counters start from zero');
is(pay()->status, 200, 'the gateway serves');
is(scalar(() = glob("$state/*.corrupt.*")), 3, 'both set aside');

stop_nginx();
done_testing();
