# What `make run` serves: the real conf/nginx.conf (only its port and
# daemon mode changed) with the sandbox bank behind it answers the demo
# partner of conf/demo/credentials.json with exactly the accounts that file
# promises.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Demo;

my $demo = OpenBank::Demo->new('demo');
my $creds = $demo->creds;

ok($demo->listens, 'conf/nginx.conf listens on 127.0.0.1:8080');
ok(eval { $demo->start }, 'nginx starts on conf/nginx.conf')
    or BAIL_OUT("nginx does not answer: $@");

# the demo partner's accounts are those credentials.json lists
my $res = $demo->get('/v1/accounts', 'X-API-Key' => $creds->{api_key});
is($res->{status}, 200, 'GET /v1/accounts with the demo API key')
    or diag($res->{content});
my $accounts = eval { $res->{json}{accounts} } || [];
is_deeply([ map { [ @$_{qw(number name bank_code)}, $_->{balance}{value},
                    $_->{balance}{currency} ] } @$accounts ],
          [ map { [ @$_{qw(number name bank_code)}, $_->{balance}{value},
                    $_->{balance}{currency} ] } @{ $creds->{accounts} } ],
          'the accounts and balances of credentials.json');
like($res->{headers}{'x-request-id'}, qr/^[0-9a-f-]{36}$/, 'a request id');

# the other sandbox partner sees its own account only
$res = $demo->get('/v1/accounts',
                  'X-API-Key' => 'ob_sandbox_key_other_9d27c4e1a0b6f358');
is($res->{status}, 200, 'the other partner');
is_deeply([ map { $_->{number} } @{ $res->{json}{accounts} } ],
          [ '6222020000000101' ], 'sees only its own account');

# no key, and an unknown path
$res = $demo->get('/v1/accounts');
is($res->{status}, 401, 'no API key: 401');
is($res->{json}{code}, 'invalid_token', 'invalid_token');

$res = $demo->get('/nothing/here');
is($res->{status}, 404, 'unknown path: 404');
is($res->{headers}{'content-type'}, 'application/problem+json',
   'as a problem');

# the operators' status
$res = $demo->get('/openbank/status');
is($res->{status}, 200, 'status');
is_deeply([ map { $_->{name} } @{ $res->{json}{partners} } ],
          [ 'demo', 'other' ], 'lists the partners');

# the access log says who called and what came of it
$demo->stop;
my $log = $demo->file('run/access.log');
like($log, qr{"GET /v1/accounts HTTP/1.1" 200 partner=demo product=accounts result=ok},
     'access log: partner, product, result');
like($log, qr{"GET /v1/accounts HTTP/1.1" 401 partner=- product=accounts result=invalid_token},
     'access log of a refusal');

unlike($demo->error_log, qr/\[(alert|emerg|crit)\]|exited on signal/,
       'no alert, crash or emergency in the error log');
my @asan = glob($demo->dir . '/run/asan.*');
ok(!@asan, 'AddressSanitizer is silent')
    or diag(OpenBank::Gateway::slurp($asan[0]));

done_testing();
