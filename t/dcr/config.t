# The directives of dynamic client registration are checked when the
# configuration is read: nginx refuses to start with a wrong one, saying
# what is wrong.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use OpenBank::Registration;

my $keys = $OpenBank::Tokens::KEYS;

sub refused {
    my ($label, $want, %o) = @_;
    my ($http, $config) = dcr_config(%o);
    $http = $o{edit}->($http) if $o{edit};
    ok(!eval { start_nginx({ http_config => $http, config => $config });
               1 }, "$label: no start");
    like($@, $want, "$label: saying why");
    eval { stop_nginx() };
}

refused('an unknown plan', qr/"openbank_registration_plan": there is no plan "gold"/,
        plan_line => 'openbank_registration_plan gold;');
refused('scopes= malformed', qr/invalid scope "" in "scopes=accounts,"/,
        plan_line => 'openbank_registration_plan p scopes=accounts,;');
refused('no scopes=, another word', qr/given as scopes=/,
        plan_line => 'openbank_registration_plan p accounts;');
refused('no plan', qr/needs "openbank_registration_directory", "openbank_registration_plan"/,
        plan_line => '');
refused('no iss=', qr/the directory's issuer is given as iss=<issuer>/,
        edit => sub { $_[0] =~ s/iss=https:\/\/directory\.test/https:\/\/directory.test/r });
refused('a directory that is no JWKS', qr/jwks ".*": /,
        edit => sub { $_[0] =~ s/directory\.jwks\.json/acme-es256.pem/r });
refused('the directive twice', qr/is duplicate/,
        edit => sub { $_[0] . "openbank_registration_plan p;\n" });

# a good one starts, and the endpoint needs no Admin API
my ($http, $config) = dcr_config();
$http =~ s/openbank_admin_key[^\n]*\n//;
$config =~ s/location \/admin\/ \{ openbank_admin_api; \}\n//;
ok(eval { start_nginx({ http_config => $http, config => $config }); 1 },
   'registration without the Admin API starts') or diag $@;
my ($pk, $jwks) = client_key();
my ($s, $j) = register({ software_statement => statement(),
                         token_endpoint_auth_method => 'private_key_jwt',
                         jwks => $jwks });
is($s, 201, 'and registers');
is(dcr_token($j->{client_id}, $pk)->status, 200,
   'its client gets a token (the registry is on)');
stop_nginx();
ok(eval { start_nginx({ http_config => $http, config => $config }); 1 },
   'again');
is(dcr_token($j->{client_id}, $pk)->status, 200,
   'and after a restart, without the Admin API');
stop_nginx();

done_testing();
