# The Admin API's partners: the list of static and registry partners,
# creation with its checks, one partner, PATCH and DELETE (refused on a
# static partner), paging, the audit log; and every refusal a problem.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;

my ($http, $config) = admin_config();
start_nginx({ http_config => $http, config => $config, workers => 2 });

sub problem_is {
    my ($got, $status, $code, $detail, $what) = @_;
    my ($s, $j, $r) = @$got;
    is($s, $status, "$what: $status");
    is($r->header('Content-Type'), 'application/problem+json',
       "$what: a problem");
    is($j && $j->{code}, $code, "$what: $code");
    like($j && $j->{detail} // '', $detail, "$what: says why") if $detail;
}

# the admin key
my $off = error_log_offset();
my $res = http_request('GET', '/admin/partners');
is($res->status, 401, 'no admin key: 401');
like($res->header('WWW-Authenticate') // '', qr/Bearer/, 'a Bearer challenge');
problem_is([admin('GET', '/admin/partners', undef, 'wrong-key')], 401,
           'invalid_token', qr/admin key/, 'a wrong admin key');
$res = http_request('GET', '/admin/partners',
                    { Authorization => "Basic $ADMIN_KEY" });
is($res->status, 401, 'the key as Basic: 401');

# the list: static partners, read-only
my ($s, $j) = admin('GET', '/admin/partners');
is($s, 200, 'the list');
is_deeply([map { "$_->{name}:$_->{source}" } @{ $j->{partners} }],
          ['acme:config', 'beta:config'], 'the static partners');
is_deeply($j->{partners}[0]{scopes}, ['accounts', 'payments'], 'with scopes');
is($j->{partners}[0]{client_id}, 'acme-erp', 'and client_id');
is($j->{partners}[0]{status}, 'active', 'active');

# creation
($s, $j) = admin('POST', '/admin/partners',
                 { name => 'zeta', plan => 'p', scopes => ['accounts'],
                   client_id => 'zeta-app',
                   quotas => { accounts => '500/day' } });
is($s, 201, 'a partner is made');
is($j->{name}, 'zeta', 'its name');
is($j->{source}, 'registry', 'of the registry');
is($j->{client_id}, 'zeta-app', 'its client_id');
is_deeply($j->{quotas}, { accounts => '500/day' }, 'its quota');
like($j->{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'created_at');

($s, $j) = admin('POST', '/admin/partners',
                 { name => 'eta', plan => 'p', scopes => ['accounts'] });
is($s, 201, 'another, without client_id');
is($j->{client_id}, 'eta', 'whose client_id is its name');

for my $n (1 .. 5) {
    is((admin('POST', '/admin/partners',
              { name => "page$n", plan => 'p', scopes => ['accounts'] }))[0],
       201, "partner page$n");
}

# every worker sees it at once
for (1 .. 4) {
    ($s, $j) = admin('GET', '/admin/partners/zeta');
    is($s, 200, 'one partner, on either worker');
}
is($j->{plan}, 'p', 'its plan');
($s, $j) = admin('GET', '/admin/partners/acme');
is($s, 200, 'a static partner');
is($j->{source}, 'config', 'from the configuration');

# the refusals of creation
my @bad = (
    ['', qr/empty/, 'an empty body'],
    ['{', qr/not JSON/, 'malformed JSON'],
    ['[1,2]', qr/JSON object/, 'an array'],
    ['{"name":"x","name":"y","plan":"p","scopes":["accounts"]}',
     qr/twice/, 'a member twice'],
    [{ plan => 'p', scopes => ['accounts'] }, qr/"name" is required/,
     'no name'],
    [{ name => 'Upper', plan => 'p', scopes => ['accounts'] }, qr/"name"/,
     'an upper-case name'],
    [{ name => '-lead', plan => 'p', scopes => ['accounts'] }, qr/"name"/,
     'a name starting with -'],
    [{ name => 'a' x 64, plan => 'p', scopes => ['accounts'] }, qr/"name"/,
     'a 64-character name'],
    [{ name => "a\x{e9}", plan => 'p', scopes => ['accounts'] }, qr/"name"/,
     'a non-ASCII name'],
    [{ name => 42, plan => 'p', scopes => ['accounts'] }, qr/"name"/,
     'a number as name'],
    [{ name => 'x1', plan => 'gold', scopes => ['accounts'] },
     qr/no plan "gold"/, 'an unknown plan'],
    [{ name => 'x1', plan => 'p', scopes => ['mining'] },
     qr/scope "mining"/, 'an unknown scope'],
    [{ name => 'x1', plan => 'p', scopes => [] }, qr/"scopes"/,
     'no scopes'],
    [{ name => 'x1', plan => 'p', scopes => 'accounts' }, qr/"scopes"/,
     'scopes as a string'],
    [{ name => 'x1', plan => 'p', scopes => ['accounts', 'accounts'] },
     qr/twice/, 'a scope twice'],
    [{ name => 'x1', plan => 'p', scopes => ['accounts'],
       quotas => { mining => '5/day' } }, qr/product "mining"/,
     'an unknown product'],
    [{ name => 'x1', plan => 'p', scopes => ['accounts'],
       quotas => { accounts => '5/week' } }, qr/per day or month/,
     'a quota per week'],
    [{ name => 'x1', plan => 'p', scopes => ['accounts'],
       quotas => { accounts => '-5/day' } }, qr/per day or month/,
     'a negative quota'],
    [{ name => 'x1', plan => 'p', scopes => ['accounts'],
       client_id => 'a b' }, qr/"client_id"/, 'a client_id with a space'],
    [{ name => 'x1', plan => 'p', scopes => ['accounts'], owner => 'me' },
     qr/"owner" is not a member/, 'an unknown member'],
    [{ name => 'x1', plan => 'p', scopes => ['accounts'], status => 'active' },
     qr/"status" is not a member/, 'a member of PATCH only'],
    ['{"name":"x1","plan":"p","scopes":["accounts"]' . ('[' x 100),
     qr/not JSON/, 'deep nesting'],
    ["{\"name\":\"x1\x00\"}", qr/NUL|not JSON/, 'a NUL'],
);
for my $b (@bad) {
    problem_is([admin('POST', '/admin/partners', $b->[0])], 400,
               'invalid_body', $b->[1], $b->[2]);
}

my $huge = '{"name":"x1","plan":"p","scopes":["accounts"],"client_id":"'
           . ('a' x (70 * 1024)) . '"}';
problem_is([admin('POST', '/admin/partners', $huge)], 413,
           'payload_too_large', qr/at most/, 'a body over 64 KiB');
my $big = '{"name":"x1","plan":"p","scopes":["accounts"],"client_id":"'
          . ('a' x (30 * 1024)) . '"}';
problem_is([admin('POST', '/admin/partners', $big)], 400, 'invalid_body',
           qr/"client_id"/, 'a 30 KiB body (read from its temporary file)');
my $res2 = http_request('POST', '/admin/partners',
                        [ Authorization => "Bearer $ADMIN_KEY",
                          'Transfer-Encoding' => 'chunked' ],
                        sprintf("%x\r\n%s\r\n0\r\n\r\n", 70 * 1024,
                                'x' x (70 * 1024)));
is($res2->status, 413, 'a chunked body over 64 KiB: 413');

problem_is([admin('POST', '/admin/partners',
                  { name => 'acme', plan => 'p', scopes => ['accounts'] })],
           409, 'invalid_state', qr/configuration/,
           'the name of a static partner');
problem_is([admin('POST', '/admin/partners',
                  { name => 'x2', plan => 'p', scopes => ['accounts'],
                    client_id => 'acme-erp' })],
           409, 'invalid_state', qr/client_id/,
           'the client_id of a static partner');
problem_is([admin('POST', '/admin/partners',
                  { name => 'zeta', plan => 'p', scopes => ['accounts'] })],
           409, 'invalid_state', qr/name/, 'a taken registry name');
problem_is([admin('POST', '/admin/partners',
                  { name => 'x3', plan => 'p', scopes => ['accounts'],
                    client_id => 'zeta-app' })],
           409, 'invalid_state', qr/client_id/, 'a taken registry client_id');

# paging
($s, $j) = admin('GET', '/admin/partners?limit=3');
is($s, 200, 'a page');
is_deeply([map { $_->{name} } @{ $j->{partners} }], [qw(acme beta eta)],
          'the first three, by name');
is($j->{next}, 'eta', 'and where the next begins');
($s, $j) = admin('GET', "/admin/partners?limit=3&after=$j->{next}");
is_deeply([map { $_->{name} } @{ $j->{partners} }], [qw(page1 page2 page3)],
          'the next three');
($s, $j) = admin('GET', '/admin/partners?after=page4');
is_deeply([map { $_->{name} } @{ $j->{partners} }], [qw(page5 zeta)],
          'the last ones');
is($j->{next}, undef, 'and no next');
problem_is([admin('GET', '/admin/partners?limit=0')], 400, 'invalid_request',
           qr/limit/, 'limit 0');
problem_is([admin('GET', '/admin/partners?limit=abc')], 400,
           'invalid_request', qr/limit/, 'limit not a number');
problem_is([admin('GET', '/admin/partners?after=%22x')], 400,
           'invalid_request', qr/after/, 'after not a name');

# PATCH
($s, $j) = admin('PATCH', '/admin/partners/zeta',
                 { scopes => ['accounts', 'payments'],
                   quotas => { accounts => '900/day', payments => '10/month' }
                 });
is($s, 200, 'PATCH');
is_deeply($j->{scopes}, ['accounts', 'payments'], 'new scopes');
is_deeply($j->{quotas}, { accounts => '900/day', payments => '10/month' },
          'new quotas');
($s, $j) = admin('GET', '/admin/partners/zeta');
is_deeply($j->{scopes}, ['accounts', 'payments'], 'kept');
is($j->{client_id}, 'zeta-app', 'the client_id unchanged');
problem_is([admin('PATCH', '/admin/partners/zeta', { status => 'gone' })],
           400, 'invalid_body', qr/"status"/, 'a bad status');
problem_is([admin('PATCH', '/admin/partners/zeta', {})], 400,
           'invalid_body', qr/nothing to change/, 'an empty PATCH');
problem_is([admin('PATCH', '/admin/partners/zeta', { name => 'other' })],
           400, 'invalid_body', qr/"name" is not a member/,
           'a rename');
problem_is([admin('PATCH', '/admin/partners/zeta', { plan => 'nope' })],
           400, 'invalid_body', qr/no plan/, 'an unknown plan');
problem_is([admin('PATCH', '/admin/partners/acme', { status => 'suspended' })],
           409, 'invalid_state', qr/configuration/, 'PATCH of a static one');
problem_is([admin('DELETE', '/admin/partners/acme')], 409, 'invalid_state',
           qr/configuration/, 'DELETE of a static one');
problem_is([admin('PATCH', '/admin/partners/nobody', { status => 'active' })],
           404, 'not_found', qr/nobody/, 'PATCH of nobody');
problem_is([admin('GET', '/admin/partners/nobody')], 404, 'not_found',
           qr/nobody/, 'GET of nobody');

# paths and methods
problem_is([admin('GET', '/admin/nothing')], 404, 'not_found', qr/nothing/,
           'an unknown path');
problem_is([admin('GET', '/admin/partners/zeta/usages')], 404, 'not_found',
           qr/usages/, 'an unknown resource of a partner');
problem_is([admin('GET', '/admin/partners/a%20b')], 404, 'not_found', undef,
           'a bad name in the path');
my @m = admin('PUT', '/admin/partners/zeta', { plan => 'p' });
problem_is(\@m, 405, 'method_not_allowed', qr/PUT/, 'PUT');
is($m[2]->header('Allow'), 'GET, HEAD, PATCH, DELETE', 'with Allow');
@m = admin('DELETE', '/admin/partners');
is($m[0], 405, 'DELETE of the list');
is($m[2]->header('Allow'), 'GET, HEAD, POST', 'with Allow');
@m = admin('POST', '/admin/audit', {});
is($m[2]->header('Allow'), 'GET, HEAD', 'the audit is read-only');

# DELETE
is((admin('DELETE', '/admin/partners/page5'))[0], 204, 'DELETE: 204');
problem_is([admin('GET', '/admin/partners/page5')], 404, 'not_found', undef,
           'then it is gone');
problem_is([admin('DELETE', '/admin/partners/page5')], 404, 'not_found',
           undef, 'DELETE twice');
is((admin('POST', '/admin/partners',
          { name => 'page5', plan => 'p', scopes => ['accounts'] }))[0],
   201, 'the name may be used again');

# the audit log: every change, in order
($s, $j) = admin('GET', '/admin/audit');
is($s, 200, 'the audit log');
my @ev = @{ $j->{events} };
is_deeply([map { "$_->{action} $_->{target}" } @ev],
          ['partner.create zeta', 'partner.create eta',
           (map { "partner.create page$_" } 1 .. 5),
           'partner.update zeta', 'partner.delete page5',
           'partner.create page5'],
          'each change, oldest first; no refused one');
is($ev[0]{actor}, 'admin', 'the actor');
like($ev[0]{time}, qr/^\d{4}-\d\d-\d\dT/, 'the time');
like($ev[0]{id}, qr/^evt_[0-9a-f]{16}$/, 'the id');
($s, $j) = admin('GET', "/admin/audit?after=$ev[1]{id}&limit=2");
is_deeply([map { $_->{id} } @{ $j->{events} }], [$ev[2]{id}, $ev[3]{id}],
          'a page after an id');
is($j->{next}, $ev[3]{id}, 'and its next');
problem_is([admin('GET', '/admin/audit?after=zzz')], 400, 'invalid_request',
           qr/event id/, 'a bad after');

my $log = error_log_since($off);
unlike($log, qr/\[alert\]|\[crit\]|\[emerg\]/, 'no alert');
unlike($log, qr/ 500 | 50[0-9] \d/, 'no 5xx');
unlike(do { local $/; open my $f, '<', servroot() . '/logs/access.log'; <$f> },
       qr/" 5\d\d /, 'no 5xx in the access log');

stop_nginx();
done_testing();
