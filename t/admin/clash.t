# Static and registry partners share one namespace: a configuration that
# declares a name, client_id or hash the registry holds is refused by
# nginx -t and by a reload (the running one keeps serving), naming both;
# so is one without a plan a registry partner is on.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use IPC::Run qw(run);

my ($http, $config) = admin_config();
my %conf = (http_config => $http, config => $config, workers => 2);

sub keyed { my ($k, $n) = @_;
            join ' ', map { api_key_call($k)->status } 1 .. $n }

sub nginx_t {
    my ($sections) = @_;
    my $s = OpenBank::Test::Match::substitute_vars($sections, OpenBank::Test::Nginx::vars());
    my $file = servroot() . '/conf/test.conf';
    open my $fh, '>', $file or die $!;
    print $fh OpenBank::Test::Nginx::conf_text($s);
    close $fh;
    my ($out, $err) = ('', '');
    local %ENV = (%ENV, OpenBank::Test::Nginx::_env_for_nginx());
    run([OpenBank::Test::Nginx::binary(), '-t', '-q', '-p', servroot(),
         '-c', $file], \undef, \$out, \$err);
    return ($? >> 8, $err);
}

start_nginx(\%conf);

my ($s, $j) = admin('POST', '/admin/partners',
                    { name => 'delta', plan => 'q', scopes => ['accounts'],
                      client_id => 'delta-app' });
is($s, 201, 'a registry partner');
($s, $j) = admin('POST', '/admin/partners/delta/credentials',
                 { type => 'api_key' });
my $key = $j->{api_key};
is(keyed($key, 1), '200', 'its key works');

my ($rc, $err) = nginx_t(\%conf);
is($rc, 0, 'nginx -t: the configuration as it is passes') or diag $err;

my $same_name = "openbank_partner delta { plan p; scopes accounts; "
              . "client_id other-app; }\n";
my $same_id = "openbank_partner omega { plan p; scopes accounts; "
            . "client_id delta-app; }\n";
my ($h1) = admin_config(extra_http => $same_name);
my ($h2) = admin_config(extra_http => $same_id);

($rc, $err) = nginx_t({ %conf, http_config => $h1 });
isnt($rc, 0, 'nginx -t: a static partner of a registry name fails');
like($err, qr/openbank_partner "delta" in \S+:\d+ clashes with the registry partner "delta"/,
     'naming both, with the file and line');

($rc, $err) = nginx_t({ %conf, http_config => $h2 });
isnt($rc, 0, 'nginx -t: a registry client_id fails');
like($err, qr/openbank_partner "omega" .*registry partner "delta" \(client_id "delta-app"\)/,
     'naming both');

my $noplan = $http =~ s/openbank_plan q \{[^}]*\}//r;
($rc, $err) = nginx_t({ %conf, http_config => $noplan });
isnt($rc, 0, 'nginx -t: without the plan of a registry partner fails');
like($err, qr/registry partner "delta" .* plan "q"/, 'naming it');

my ($ok, $why) = reload_nginx({ %conf, http_config => $h1 });
ok(!$ok, 'a reload with the clash is refused');
like($why // '', qr/clashes with the registry partner "delta"/, 'why');
is(keyed($key, 3), '200 200 200', 'the running configuration still serves');

($ok, $why) = reload_nginx(\%conf);
ok($ok, 'the good configuration reloads') or diag $why;
is(keyed($key, 2), '200 200', 'and serves');

# and at the Admin API: a name of the configuration is taken
($s, $j) = admin('POST', '/admin/partners',
                 { name => 'acme', plan => 'p', scopes => ['accounts'] });
is($s, 409, 'a static name at creation: 409');

stop_nginx();
done_testing();
