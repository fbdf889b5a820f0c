# Introspection (RFC 7662) and revocation (RFC 7009): a partner sees and
# revokes its own tokens only; a revoked token is refused by every worker
# from the next request on, and still after a restart.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;

my ($http, $config) = token_config();
my %form = ('Content-Type' => 'application/x-www-form-urlencoded');
my %acme = (%form, Authorization => basic('acme-erp', 'acme-secret-123'));
my %beta = (%form, Authorization => basic('beta-app', 'beta-secret-456'));
my $type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

sub token_of {
    my ($h, @more) = @_;
    my $res = http_request('POST', '/oauth2/token', $h,
                           form_body(grant_type => 'client_credentials', @more));
    is($res->status, 200, 'a token is issued') or diag $res->body;
    return json_decode($res->body)->{access_token};
}

sub calls {
    my ($token, $n) = @_;
    return join ' ', map {
        http_request('GET', '/v1/accounts',
                     { Authorization => "Bearer $token" })->status
    } 1 .. $n;
}

start_nginx({ http_config => $http, config => $config, workers => 2 });

my $token = token_of(\%acme);
my $other = token_of(\%acme);
is(calls($token, 4), '200 200 200 200', 'the token works (and is cached)');

# introspection
my $res = http_request('POST', '/oauth2/introspect', \%acme,
                       form_body(token => $token));
is($res->status, 200, 'introspection answers');
is($res->header('Cache-Control'), 'no-store', 'not to be cached');
my $i = json_decode($res->body);
my $c = jwt_claims($token);
is_deeply($i, { active => JSON::PP::true(), scope => 'accounts payments',
                client_id => 'acme-erp', sub => 'acme-erp',
                token_type => 'Bearer', exp => $c->{exp}, iat => $c->{iat},
                iss => 'https://gw.test', aud => 'https://gw.test',
                jti => $c->{jti} },
          'the token\'s claims, active');

$res = http_request('POST', '/oauth2/introspect', \%beta,
                    form_body(token => $token));
is($res->body, qq({"active":false}\n), 'another partner sees it inactive');

$res = http_request('POST', '/oauth2/introspect', \%acme,
                    form_body(token => 'garbage.garbage.garbage'));
is($res->body, qq({"active":false}\n), 'garbage is inactive');

$res = http_request('POST', '/oauth2/introspect', \%form,
                    form_body(token => $token));
is($res->status, 401, 'introspection needs a client');
like($res->body, qr/"invalid_client"/, 'invalid_client');

$res = http_request('POST', '/oauth2/introspect', \%acme, 'token_type_hint=x');
is($res->status, 400, 'introspection needs a token');

# revocation by another partner is refused and changes nothing
$res = http_request('POST', '/oauth2/revoke', \%beta,
                    form_body(token => $token));
is($res->status, 400, 'beta cannot revoke acme\'s token');
like($res->body, qr/"invalid_request"/, 'invalid_request');
is(calls($token, 2), '200 200', 'the token still works');

# revocation by its partner: every worker refuses it at once
$res = http_request('POST', '/oauth2/revoke', \%acme,
                    form_body(token => $token, token_type_hint => 'access_token'));
is($res->status, 200, 'acme revokes its token');
is($res->body, '', 'with an empty answer');

my $off = error_log_offset();
is(calls($token, 8), join(' ', (401) x 8),
   'the revoked token is refused from the next request on, in every worker');
like(error_log_since($off), qr/the token is revoked/, 'as revoked');
is(calls($other, 2), '200 200', 'control: another token of acme works');

$res = http_request('POST', '/oauth2/introspect', \%acme,
                    form_body(token => $token));
is($res->body, qq({"active":false}\n), 'introspection: inactive');

is(http_request('POST', '/oauth2/revoke', \%acme,
                form_body(token => $token))->status, 200,
   'revoking twice is fine');
is(http_request('POST', '/oauth2/revoke', \%acme,
                form_body(token => 'x.y.z'))->status, 200,
   'revoking garbage answers 200 (RFC 7009 2.2)');

# private_key_jwt at the revocation endpoint, aud = that endpoint
my $third = token_of(\%acme);
$res = http_request('POST', '/oauth2/revoke', \%form,
    form_body(token => $third, client_assertion_type => $type,
              client_assertion => assertion(
                  claims => { aud => 'https://gw.test/oauth2/revoke' })));
is($res->status, 200, 'revocation with private_key_jwt');
is(calls($third, 2), '401 401', 'that token is refused too');

# durable: a record of the revocations journal, and a restart
my $dir = servroot() . '/state';
my $state = "$dir/revocations.journal";
ok(-f $state, 'the revocations are in openbank_state');
my $text = do { local $/; open my $f, '<', $state or die $!; <$f> };
like($text, qr/\Q$c->{jti}\E/, 'with the revoked jti');
ok(!glob("$dir/*.tmp.*"), 'no temporary file left');
ok(!-e "$dir/revoked-tokens", 'and no file of revoked tokens');

stop_nginx();

# the file of revoked tokens an earlier version kept is read at start,
# then superseded by the journal
start_nginx({ http_config => $http, config => $config, workers => 2 });
my $legacy = token_of(\%acme);
my $l = jwt_claims($legacy);
stop_nginx();
open my $lf, '>', "$dir/revoked-tokens" or die $!;
print $lf "$l->{exp} $l->{jti}\n";
close $lf;
open $lf, '>', "$dir/revoked-tokens.lock" or die $!;
close $lf;

start_nginx({ http_config => $http, config => $config, workers => 2 });

like(error_log_since(0), qr/3 revoked tokens restored/, 'restored at start');
is(calls($token, 4), '401 401 401 401', 'still refused after a restart');
is(calls($third, 2), '401 401', 'the other revoked one too');
is(calls($legacy, 2), '401 401', 'and the one of the older file');
is(calls($other, 2), '200 200', 'control: a token not revoked works');
ok(!-e "$dir/revoked-tokens" && !-e "$dir/revoked-tokens.lock",
   'the older file and its lock are gone');
$text = do { local $/; open my $f, '<', $state or die $!; <$f> };
like($text, qr/\Q$l->{jti}\E/, 'its revocation is in the journal');

stop_nginx();
start_nginx({ http_config => $http, config => $config, workers => 2 });
is(calls($legacy, 2), '401 401', 'and still refused at the next start');

# a damaged file of revoked tokens: the gateway refuses to start rather
# than guess
stop_nginx();
open my $f, '>', "$dir/revoked-tokens" or die $!;
print $f "$c->{exp} $c->{jti}\n$l->{exp} $l->{jti}\ngarbage\n";
close $f;
my $started = eval { start_nginx({ http_config => $http, config => $config });
                     1 };
SKIP: {
    skip 'nginx runs as a single valgrind process', 1
        if $ENV{TEST_NGINX_USE_VALGRIND};
    ok(!$started, 'a damaged revocation file stops the start');
}
like(error_log_since(0) . ($@ // ''), qr/is damaged at line 3/,
     'saying where') or diag $@;

done_testing();
