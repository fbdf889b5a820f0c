# docs/openapi.yaml against what the gateway serves: every route of the
# bank's router and every location of conf/nginx.conf is documented, and
# every documented operation answers (through the gateway of
# conf/nginx.conf) with the status it gives to the requests below, one the
# document lists for it, never with a routing 404 or 405.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use YAML::XS qw(LoadFile);
use POSIX qw(strftime);

my $root = $OpenBank::Gateway::ROOT;
my $doc = LoadFile("$root/docs/openapi.yaml");

is($doc->{openapi}, '3.1.0', 'OpenAPI 3.1');
my $paths = $doc->{paths};

# documented operations: "METHOD /path/{param}"
my %documented;
for my $p (keys %$paths) {
    for my $m (keys %{ $paths->{$p} }) {
        next unless $m =~ /^(get|post|put|patch|delete)$/;
        $documented{ uc($m) . " $p" } = $paths->{$p}{$m};
    }
}

# $ref's resolve
my $yaml = OpenBank::Gateway::slurp("$root/docs/openapi.yaml");
for my $ref ($yaml =~ m{\$ref: '#/([^']+)'}g) {
    my $node = $doc;
    $node = $node->{$_} for split m{/}, $ref;
    ok($node, "\$ref #/$ref resolves");
}

# every operation documents 405 (with Allow) and 500, and the Problem's
# codes include theirs
my $responses = $doc->{components}{responses};
ok($responses->{MethodNotAllowed}{headers}{Allow},
   'MethodNotAllowed has an Allow header');
my %codes = map { $_ => 1 } @{ $doc->{components}{schemas}{Problem}
                                   {properties}{code}{enum} };
ok($codes{method_not_allowed}, 'Problem.code has method_not_allowed');
ok($codes{internal_error}, 'Problem.code has internal_error');
for my $op (sort keys %documented) {
    my $r = $documented{$op}{responses};
    is($r->{405}{'$ref'}, '#/components/responses/MethodNotAllowed',
       "$op documents 405");
    is($r->{500}{'$ref'}, '#/components/responses/InternalError',
       "$op documents 500");
}

# the bank's routes (lua/openbank/bank.lua's router table)
my $bank = OpenBank::Gateway::slurp("$root/lua/openbank/bank.lua");
my ($table) = $bank =~ /local routes = router\.new\(\{(.*?)\n\}\)/s;
my @routes = $table =~ /\{\s*"([A-Z]+)",\s*"([^"]+)"/g;
ok(@routes >= 26, 'the bank has routes');
while (my ($m, $p) = splice @routes, 0, 2) {
    ok($documented{"$m $p"}, "bank route $m $p is documented");
}

# the gateway's locations (conf/nginx.conf, the server that listens on TCP)
my $conf = OpenBank::Gateway::slurp("$root/conf/nginx.conf");
my ($gwserver) = $conf =~ /(listen  127\.0\.0\.1:8080;.*)\z/s;
my @locations = $gwserver =~ /location\s+(=\s+)?(\S+)\s*\{/g;
while (my ($exact, $loc) = splice @locations, 0, 2) {
    next if $loc eq '/';
    if ($exact) {
        ok(grep({ / \Q$loc\E$/ } keys %documented), "location = $loc is documented");
    } else {
        ok(grep({ / \Q$loc\E/ } keys %documented),
           "location $loc serves documented paths");
    }
}

# every documented operation answers
my $gw = OpenBank::Gateway->new('openapi', settle_delay => 0.2);
$gw->start;

my $exp = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 86400));
my $pay = $gw->post('/v1/payments', {
    debtor_account => { number => '6222020000000001' },
    creditor_account => { number => '6222020000000201',
                          name => 'Shanghai Supplier Co., Ltd.',
                          bank_code => 'OBKCNSH' },
    amount => { value => '1.00', currency => 'CNY' },
    reference => 'openapi' }, 'Idempotency-Key' => 'openapi-1')->{json}{id};
my $esc = $gw->post('/v1/escrows', {
    payer_account => { number => '6222020000000001' },
    payee_account => { number => '6222020000000203' },
    amount => { value => '1.00', currency => 'CNY' },
    expires_at => $exp }, 'Idempotency-Key' => 'openapi-2')->{json}{id};
my %mandate = (
    payer_account => { number => '6222020000000201' },
    max_amount => { value => '10.00', currency => 'CNY' },
    expires_at => $exp, reference => 'openapi');
my $mdt = $gw->post('/v1/mandates', \%mandate,
                    'Idempotency-Key' => 'openapi-3')->{json}{id};
my $mdt2 = $gw->post('/v1/mandates', \%mandate,
                     'Idempotency-Key' => 'openapi-4')->{json}{id};
$gw->post("/v1/mandates/$mdt2/authorise", '', 'Idempotency-Key' => 'openapi-5');
my $col = $gw->post('/v1/collections', {
    mandate_id => $mdt2, amount => { value => '1.00', currency => 'CNY' },
    reference => 'openapi' }, 'Idempotency-Key' => 'openapi-6')->{json}{id};

my $batch = $gw->post('/v1/payment-batches', {
    debtor_account => { number => '6222020000000001' },
    items => [ { creditor_account => { number => '6222020000000201',
                                       name => 'Shanghai Supplier Co., Ltd.',
                                       bank_code => 'OBKCNSH' },
                 amount => { value => '1.00', currency => 'CNY' },
                 reference => 'openapi', end_to_end_id => 'openapi-1' } ] },
    'Idempotency-Key' => 'openapi-7')->{json}{id};

my @wh = map { $gw->post('/v1/webhook-endpoints',
                          { url => "http://127.0.0.1:9/openapi-$_",
                            events => ['*'] })->{json}{id} } 1, 2;
my $evt = $gw->post('/internal/events',
                    { partner => 'demo', type => 'payment.settled',
                      data => {} })->{json}{id};

# the id that {id} of a path stands for (of a DELETE: another one)
my $ids = sub {
    my ($p, $m) = @_;
    return $p =~ m{^/v1/webhook-endpoints} ? $wh[($m // '') eq 'DELETE']
           : $p =~ m{^/v1/events} ? $evt
           : $p =~ m{^/v1/payment-batches} ? $batch
           : $p =~ m{^/v1/payments} ? $pay : $p =~ m{^/v1/mandates} ? $mdt
           : $p =~ m{^/v1/collections} ? $col : $esc;
};


my %body = (
    'POST /v1/payments' => '{}',
    'POST /v1/account-verifications' => '{"account":{"number":"6222020000000201",'
        . '"name":"x","bank_code":"OBKCNSH"}}',
    'POST /v1/escrows' => '{}',
    'POST /v1/mandates' => '{}',
    'POST /v1/collections' => '{}',
    'POST /v1/payment-batches' => '{}',
);

# what each answers to those bodies (the OAuth endpoints' is empty), in
# this order: the escrow is cancelled first, so every other move is 409
my %status = (
    'GET /.well-known/jwks.json' => 200,
    'GET /.well-known/oauth-authorization-server' => 200,
    'GET /metrics' => 200,
    'GET /openbank/status' => 200,
    'GET /v1/accounts' => 200,
    'GET /v1/escrows/{id}' => 200,
    'GET /v1/payment-batches/{id}' => 200,
    'GET /v1/payment-batches/{id}/status-report' => 200,
    'GET /v1/payments' => 200,
    'GET /v1/payments/{id}' => 200,
    'GET /v1/statements' => 200,
    'POST /oauth2/introspect' => 400,
    'POST /oauth2/revoke' => 400,
    'POST /oauth2/token' => 400,
    'POST /v1/account-verifications' => 200,
    'POST /v1/escrows' => 400,
    'POST /v1/escrows/{id}/cancel' => 200,
    'POST /v1/escrows/{id}/dispute' => 409,
    'POST /v1/escrows/{id}/fund' => 409,
    'POST /v1/escrows/{id}/refund' => 409,
    'POST /v1/escrows/{id}/release' => 409,
    'POST /v1/payment-batches' => 400,
    'POST /v1/payments' => 400,
    'DELETE /v1/mandates/{id}' => 200,
    'GET /v1/mandates/{id}' => 200,
    'POST /v1/mandates/{id}/authorise' => 409,
    'POST /v1/mandates' => 400,
    'GET /v1/collections/{id}' => 200,
    'POST /v1/collections' => 400,
    'GET /v1/webhook-endpoints' => 200,
    'POST /v1/webhook-endpoints' => 400,
    'GET /v1/webhook-endpoints/{id}' => 200,
    'DELETE /v1/webhook-endpoints/{id}' => 204,
    'POST /v1/webhook-endpoints/{id}/test' => 202,
    'GET /v1/events' => 200,
    'GET /v1/events/{id}' => 200,
    'POST /internal/events' => 400,
    # the Admin API without its key
    'GET /admin/audit' => 401,
    'GET /admin/partners' => 401,
    'POST /admin/partners' => 401,
    'GET /admin/partners/{name}' => 401,
    'PATCH /admin/partners/{name}' => 401,
    'DELETE /admin/partners/{name}' => 401,
    'GET /admin/partners/{name}/credentials' => 401,
    'POST /admin/partners/{name}/credentials' => 401,
    'DELETE /admin/partners/{name}/credentials/{id}' => 401,
    'GET /admin/partners/{name}/usage' => 401,
    'GET /admin/partners/{name}/webhook-endpoints' => 401,
    'POST /admin/partners/{name}/webhook-endpoints' => 401,
    'GET /admin/partners/{name}/webhook-endpoints/{id}' => 401,
    'DELETE /admin/partners/{name}/webhook-endpoints/{id}' => 401,
    'POST /admin/partners/{name}/webhook-endpoints/{id}/test' => 401,
    # registration: an empty body; a client's URI without its token
    'POST /oauth2/register' => 400,
    'GET /oauth2/register/{client_id}' => 401,
    'PUT /oauth2/register/{client_id}' => 401,
    'DELETE /oauth2/register/{client_id}' => 401,
);

my $n = 0;
for my $op (sort keys %documented) {
    my ($m, $p) = split / /, $op, 2;
    (my $path = $p) =~ s/\{id\}/$ids->($p, $m)/e;
    $path .= '?date=2026-11-23' if $p eq '/v1/statements';

    my $res = $gw->request($m, $path, $m eq 'POST' ? ($body{$op} // '') : undef,
                           'Idempotency-Key' => 'openapi-op-' . ++$n);
    my $codes = $documented{$op}{responses};
    is($res->{status}, $status{$op} // 'a status in %status',
       "$op answers " . ($status{$op} // '?')) or diag($res->{content});
    ok($codes->{ $res->{status} }, "$op answers $res->{status}, documented")
        or diag($res->{content});
    ok(!($res->{status} == 404 && ($res->{json}{detail} // '') =~ /no resource/i)
       && $res->{status} != 405, "$op is routed");
}

# a method a documented path does not take: 405 method_not_allowed, with
# the documented methods in Allow (and HEAD with GET)
my %methods;
for my $op (keys %documented) {
    my ($m, $p) = split / /, $op, 2;
    push @{ $methods{$p} }, $m;
}
for my $p (sort keys %methods) {
    (my $path = $p) =~ s/\{id\}/$ids->($p, 'GET')/e;
    my ($bad) = grep { my $x = $_; !grep { $_ eq $x } @{ $methods{$p} } }
                     qw(DELETE PUT PATCH);
    my $res = $gw->request($bad, $path);
    is($res->{status}, 405, "$bad $p: 405") or diag($res->{content});
    like($res->{headers}{'content-type'}, qr{^application/problem\+json},
         "$bad $p: a problem");
    is($res->{json}{code}, 'method_not_allowed', "$bad $p: its code");
    is($res->{json}{title}, 'Method not allowed', "$bad $p: its title");
    my @allow = grep { $_ ne 'HEAD' } split /,\s*/,
                                           $res->{headers}{allow} // '';
    is(join(', ', sort @allow), join(', ', sort @{ $methods{$p} }),
       "$bad $p: Allow lists the documented methods");
}

$gw->stop;
$gw->check_log;

done_testing();
