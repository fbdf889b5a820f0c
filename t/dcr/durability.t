# A registered client is the registry's, and as durable: it survives a
# reload, a restart and a kill -9 of every process right after its 201;
# a software statement used before any of them stays used (its jti is a
# journal record).  Its registration access token is not on disk in
# clear.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use OpenBank::Registration;

my ($http, $config) = dcr_config();
my %conf = (http_config => $http, config => $config, workers => 2);
my $dir = servroot() . '/state';
my %good;

sub slurp { local $/; open my $f, '<', $_[0] or return ''; binmode $f; <$f> }

start_nginx(\%conf);

my ($pk, $jwks) = client_key('client-1');
%good = (token_endpoint_auth_method => 'private_key_jwt', jwks => $jwks,
         scope => 'accounts');
my $ssa = statement();
my ($s, $j) = register({ %good, software_statement => $ssa });
is($s, 201, 'registered');
my ($id, $rat) = ($j->{client_id}, $j->{registration_access_token});

sub works {
    my ($cid, $token) = @_;
    my $r = dcr_token($cid, $pk);
    return 0 unless $r->status == 200;
    return 0 unless bearer_call(json_decode($r->body)->{access_token})->status
                    == 200;
    return (dcr_call('GET', "/oauth2/register/$cid", undef, $token))[0]
           == 200;
}

ok(works($id, $rat), 'it gets a token, calls the API, reads itself');
unlike(slurp("$dir/registry.journal"), qr/\Q$rat\E/,
       'the journal has no registration access token in clear');

ok(reload_nginx(\%conf), 'reload');
ok(works($id, $rat), 'after a reload');
is((register({ %good, software_statement => $ssa }))[1]{error},
   'invalid_software_statement', 'its statement stays used');

stop_nginx();
start_nginx(\%conf);
ok(works($id, $rat), 'after a restart');
my %seen;
for (1 .. 10) {
    my ($st, $jj) = register({ %good, software_statement => $ssa });
    $seen{"$st $jj->{error}"}++;
}
is(join(',', keys %seen), '400 invalid_software_statement',
   'its statement is refused after the restart, by every worker');

# kill -9 of master and workers right after the 201s
my @made;
for my $n (1 .. 4) {
    ($s, $j) = register({ %good, software_statement => statement() });
    is($s, 201, "client $n");
    push @made, [$j->{client_id}, $j->{registration_access_token}];
}
my $last = statement();
($s, $j) = register({ %good, software_statement => $last });
push @made, [$j->{client_id}, $j->{registration_access_token}];
($s) = dcr_call('PUT', "/oauth2/register/$made[0][0]",
                { %good, client_id => $made[0][0],
                  scope => 'accounts payments' },
                $made[0][1]);
is($s, 200, 'one updated');
($s) = dcr_call('DELETE', "/oauth2/register/$made[1][0]", undef,
                $made[1][1]);
is($s, 204, 'one deleted');
kill_nginx();
start_nginx(\%conf);
is(join(' ', map { works(@$_) ? 'ok' : 'lost' } @made[0, 2 .. 4]),
   'ok ok ok ok', 'after kill -9, every client answered 201 works');
($s, $j) = dcr_call('GET', "/oauth2/register/$made[0][0]", undef,
                    $made[0][1]);
is($j->{scope}, 'accounts payments', 'the update holds');
is((dcr_call('GET', "/oauth2/register/$made[1][0]", undef, $made[1][1]))[0],
   401, 'the deletion holds');
is((register({ %good, software_statement => $last }))[1]{error},
   'invalid_software_statement', 'the last statement stays used');
like(error_log_since(0), qr/registry records restored/, 'restored at start');

# the journal cannot be written: 503 state_unavailable, with an [alert];
# the client is in force and written with the next write that works
my $jn = "$dir/registry.journal";
rename $jn, "$jn.saved" or die $!;
mkdir $jn or die $!;
my $off = error_log_offset();
($s, $j) = register({ %good, software_statement => statement() });
is($s, 503, 'a registration the journal cannot take: 503');
is($j->{code}, 'state_unavailable', 'state_unavailable');
like(error_log_since($off), qr/\[alert\].*registry journal/,
     'with an [alert] naming the journal');
rmdir $jn or die $!;
rename "$jn.saved", $jn or die $!;
($s, $j) = register({ %good, software_statement => statement() });
is($s, 201, 'the journal back: 201');
stop_nginx();
start_nginx(\%conf);
($s, $j) = admin('GET', '/admin/partners');
is(scalar(grep { $_->{name} =~ /^dcr-/ } @{ $j->{partners} }), 7,
   'after a restart: every client, the one answered 503 too');

stop_nginx();
done_testing();
