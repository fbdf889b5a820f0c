# The registry is durable: what the Admin API answered 201 for is kept
# across a reload, a restart and a kill -9 of every process; the journal
# under openbank_state holds no secret in clear (HMAC secrets are sealed
# with registry.key, made once with mode 0600).

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use OpenBank::Signer qw(sign_request);

my ($http, $config) = admin_config();
my %conf = (http_config => $http, config => $config, workers => 2);
my %form = ('Content-Type' => 'application/x-www-form-urlencoded');
my $dir = servroot() . '/state';

sub keyed { my ($k, $n) = @_;
            join ' ', map { api_key_call($k)->status } 1 .. $n }
sub token_ok {
    my ($id, $secret) = @_;
    my $r = http_request('POST', '/oauth2/token',
                         { %form, Authorization => basic($id, $secret) },
                         form_body(grant_type => 'client_credentials'));
    return $r->status;
}
sub signed {
    my ($key, $hmac) = @_;
    my $port = server_port();
    my @sig = sign_request(method => 'GET', path => '/v1/signed',
                           authority => "127.0.0.1:$port",
                           alg => 'hmac-sha256', key => $hmac,
                           keyid => 'hmac');
    return http_request('GET', '/v1/signed',
                        { 'X-API-Key' => $key,
                          map { split /: /, $_, 2 } @sig },
                        undef, { host => "127.0.0.1:$port" })->status;
}
sub slurp { local $/; open my $f, '<', $_[0] or return ''; binmode $f; <$f> }

start_nginx(\%conf);

my ($s, $j) = admin('POST', '/admin/partners',
                    { name => 'zeta', plan => 'p', scopes => ['accounts'],
                      client_id => 'zeta-app' });
is($s, 201, 'a partner');
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'api_key' });
my $key = $j->{api_key};
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'client_secret' });
my $secret = $j->{client_secret};
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'hmac_secret' });
my $hmac = $j->{hmac_secret};
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'api_key' });
my ($gone, $gone_id) = ($j->{api_key}, $j->{id});
is((admin('DELETE', "/admin/partners/zeta/credentials/$gone_id"))[0], 204,
   'one deleted');
is(keyed($key, 2) . ' ' . token_ok('zeta-app', $secret) . ' '
   . signed($key, $hmac), '200 200 200 200', 'all work');

# on disk
ok(-s "$dir/registry.journal", 'the registry journal under openbank_state');
my $sealing = "$dir/registry.key";
is(-s $sealing, 32, 'the sealing key: 32 bytes');
is((stat $sealing)[2] & 0777, 0600, 'mode 0600');
my $text = slurp("$dir/registry.journal");
like($text, qr/zeta-app/, 'the journal has the partner');
unlike($text, qr/\Q$key\E|\Q$secret\E|\Q$hmac\E/,
       'and no secret in clear');

# a reload
ok(reload_nginx(\%conf), 'reload');
is(keyed($key, 3) . ' ' . token_ok('zeta-app', $secret) . ' '
   . signed($key, $hmac), '200 200 200 200 200',
   'after a reload, on every worker');
is(keyed($gone, 1), '401', 'the deleted key stays deleted');

# a restart
my $seal = slurp($sealing);
stop_nginx();
start_nginx(\%conf);
is(keyed($key, 3) . ' ' . token_ok('zeta-app', $secret) . ' '
   . signed($key, $hmac), '200 200 200 200 200', 'after a restart');
is(keyed($gone, 1), '401', 'the deleted key stays deleted');
is(slurp($sealing), $seal, 'the sealing key is kept');
($s, $j) = admin('GET', '/admin/audit');
my @ev = @{ $j->{events} };
is(scalar @ev, 6, 'the audit log is kept');
($s, $j) = admin('POST', '/admin/partners',
                 { name => 'eta', plan => 'p', scopes => ['accounts'] });
($s, $j) = admin('GET', '/admin/audit?after=' . $ev[-1]{id});
is(scalar @{ $j->{events} }, 1, 'a new event');
ok($j->{events}[0]{id} gt $ev[-1]{id}, 'after the old ones');

# kill -9 of master and workers right after the 201s
my @made;
for my $n (1 .. 5) {
    ($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                     { type => 'api_key' });
    is($s, 201, "key $n");
    push @made, $j->{api_key};
}
($s) = admin('PATCH', '/admin/partners/eta', { status => 'suspended' });
is($s, 200, 'eta suspended');
kill_nginx();
start_nginx(\%conf);
is(join(' ', map { keyed($_, 1) } @made), '200 200 200 200 200',
   'after kill -9, every key answered 201 works');
($s, $j) = admin('GET', '/admin/partners/eta');
is($j->{status}, 'suspended', 'and the suspension holds');
like(error_log_since(0), qr/registry records restored/, 'restored at start');

# the sealing key lost: no start (the HMAC secrets would not open)
stop_nginx();
rename $sealing, "$sealing.saved" or die $!;
ok(!eval { start_nginx(\%conf); 1 }, 'without registry.key, no start');
like($@, qr/registry\.key" is missing, and the registry journal holds \d+ HMAC secrets/,
     'saying why');
rename "$sealing.saved", $sealing or die $!;
start_nginx(\%conf);
is(signed($key, $hmac), '200', 'restored: the HMAC secret works');

# a torn last record (a crash in the middle of a write) is ignored
stop_nginx();
open my $fh, '>>', "$dir/registry.journal" or die;
print $fh pack('a4 L L', 'OBJ1', 500, 0) . 'torn';
close $fh;
start_nginx(\%conf);
is(keyed($key, 1), '200', 'a torn last record is ignored');

# the journal replaced by a directory: a change is 503 (but in force);
# once it is back, the next change rewrites the journal from the zone
my $jn = "$dir/registry.journal";
rename $jn, "$jn.saved" or die $!;
mkdir $jn or die $!;
my $off = error_log_offset();
($s, $j) = admin('POST', '/admin/partners',
                 { name => 'theta', plan => 'p', scopes => ['accounts'] });
is($s, 503, 'a change the journal cannot take: 503');
is($j->{code}, 'state_unavailable', 'state_unavailable');
like(error_log_since($off), qr/\[alert\].*registry journal/,
     'with an [alert] naming the journal');
is((admin('GET', '/admin/partners/theta'))[0], 200, 'the change is in force');
rmdir $jn or die $!;
rename "$jn.saved", $jn or die $!;
($s) = admin('POST', '/admin/partners',
             { name => 'iota', plan => 'p', scopes => ['accounts'] });
is($s, 201, 'the journal back: 201');
ok(OpenBank::Test::Nginx::poll_until(5, sub {
       slurp($jn) =~ /ptheta/ }), 'and theta is written with it');
stop_nginx();
start_nginx(\%conf);
is((admin('GET', '/admin/partners/theta'))[0], 200, 'theta after a restart');
is((admin('GET', '/admin/partners/iota'))[0], 200, 'iota too');

stop_nginx();
done_testing();
