package OpenBank::Registration;

# Helpers of the dynamic client registration tests (t/dcr/*.t): the
# configuration (the Admin API tests' one, with a directory and the
# registration endpoint), software statements signed with Crypt::JWT by
# the directory's keys (t/keys/directory-*.pem), client keys made for
# each test, and calls of the endpoint.

use strict;
use warnings;

use Exporter 'import';
use Crypt::JWT qw(encode_jwt);
use Crypt::PK::ECC;
use Crypt::PK::RSA;
use JSON::PP;
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;

our @EXPORT = qw($DIR_ISS dcr_config statement client_key register
                 dcr_call client_assertion dcr_token);

our $DIR_ISS = 'https://directory.test';

my $json = JSON::PP->new->canonical->utf8;
my $n = 0;

sub dcr_config {
    my (%o) = @_;
    my $plan = $o{plan_line}
        // 'openbank_registration_plan p scopes=accounts,payments;';
    my ($http, $config) = admin_config(
        extra_http => "openbank_registration_directory "
                      . "$OpenBank::Tokens::KEYS/directory.jwks.json "
                      . "iss=$DIR_ISS;\n$plan\n" . ($o{extra_http} // ''),
        %{ $o{token} // {} });
    $config .= <<'EOT';
location = /oauth2/register { openbank_registration_endpoint; }
location ^~ /oauth2/register/ { openbank_registration_endpoint; }
EOT
    return ($http, $config);
}

# a software statement of the directory, with changes:
#   kid => 'dir-es' (default) | 'dir-ps', alg => ..., key => object,
#   claims => { name => value or undef to remove }, header => {...}
sub statement {
    my (%o) = @_;
    my $kid = $o{kid} // 'dir-es';
    my %keys = ('dir-es' => ['directory-es256.pem', 'Crypt::PK::ECC', 'ES256'],
                'dir-ps' => ['directory-rsa.pem', 'Crypt::PK::RSA', 'PS256']);
    my $k = $keys{$o{key_of} // $kid} // $keys{'dir-es'};
    my $key = $o{key} // $k->[1]->new("$OpenBank::Tokens::KEYS/$k->[0]");
    my $now = time;
    my %c = (iss => $DIR_ISS, iat => $now, exp => $now + 600,
             jti => 'ssa-' . $$ . '-' . $n++ . '-' . int(rand(1e9)),
             software_id => 'fintech-app-1',
             software_client_name => 'Fintech App');
    for my $c (keys %{ $o{claims} // {} }) {
        if (defined $o{claims}{$c}) { $c{$c} = $o{claims}{$c} }
        else { delete $c{$c} }
    }
    return encode_jwt(payload => \%c, alg => $o{alg} // $k->[2],
                      key => $key,
                      extra_headers => { kid => $kid, typ => 'JWT',
                                         %{ $o{header} // {} } });
}

# a client's own key pair: (Crypt::PK::ECC object, its public JWKS)
sub client_key {
    my ($kid) = @_;
    my $pk = Crypt::PK::ECC->new;
    $pk->generate_key('secp256r1');
    my $jwk = $pk->export_key_jwk('public', 1);
    $jwk->{kid} = $kid // 'client-1';
    return ($pk, { keys => [$jwk] });
}

# POST /oauth2/register -> ($status, $json, $res)
sub register {
    my ($meta) = @_;
    return dcr_call('POST', '/oauth2/register', $meta);
}

sub dcr_call {
    my ($method, $path, $body, $token) = @_;
    my %h;
    $h{Authorization} = "Bearer $token" if defined $token;
    $h{'Content-Type'} = 'application/json' if defined $body;
    my $res = http_request($method, $path, \%h,
                           defined $body ? (ref $body ? $json->encode($body)
                                                      : $body)
                                         : undef);
    my $data = eval { $json->decode($res->body) };
    return ($res->status, $data, $res);
}

# a private_key_jwt assertion (RFC 7523) of a registered client
sub client_assertion {
    my ($client_id, $pk, $kid) = @_;
    my $now = time;
    return encode_jwt(payload => { iss => $client_id, sub => $client_id,
                                   aud => "$ISSUER/oauth2/token",
                                   iat => $now, exp => $now + 60,
                                   jti => 'ca-' . $n++ . '-' . rand() },
                      alg => 'ES256', key => $pk,
                      extra_headers => { kid => $kid // 'client-1' });
}

# the token endpoint with private_key_jwt: the response
sub dcr_token {
    my ($client_id, $pk, $kid, $scope) = @_;
    return http_request('POST', '/oauth2/token',
        { 'Content-Type' => 'application/x-www-form-urlencoded' },
        form_body(grant_type => 'client_credentials',
                  client_assertion_type =>
                      'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
                  client_assertion => client_assertion($client_id, $pk, $kid),
                  ($scope ? (scope => $scope) : ())));
}

1;
