# GET /admin/partners/{name}/usage: a partner's calls per day in
# openbank_timezone and per product, its refusals by code, its answers by
# class and its latency; every day of the range, kept across a restart,
# readable after the partner is deleted.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use POSIX qw(strftime);

my ($http, $config) = admin_config(extra_http => <<'EOT');
openbank_plan tiny { rate 1000r/s burst=1000; quota accounts 2/day; }
EOT
$config .= <<'EOT';
location /v1/pay {
    openbank_auth api_key;
    openbank_scope payments;
    openbank_product payments;
    content_by_lua_block { ngx.say("paid") }
}
location /v1/boom {
    openbank_auth api_key;
    openbank_scope accounts;
    openbank_product payments;
    content_by_lua_block { ngx.exit(500) }
}
EOT
my %conf = (http_config => $http, config => $config, workers => 2);

sub call { my ($path, $key) = @_;
           http_request('GET', $path, { 'X-API-Key' => $key })->status }
sub usage { my ($name, $q) = @_;
            admin('GET', "/admin/partners/$name/usage" . ($q // '')) }

start_nginx(\%conf);

my ($s, $j) = admin('POST', '/admin/partners',
                    { name => 'nova', plan => 'tiny',
                      scopes => ['accounts'] });
is($s, 201, 'a partner on a plan of 2 account calls a day');
($s, $j) = admin('POST', '/admin/partners/nova/credentials',
                 { type => 'api_key' });
my $key = $j->{api_key};

my $before = strftime('%Y-%m-%d', gmtime);
is(join(' ', map { call('/v1/keyed', $key) } 1 .. 3)
   . ' ' . call('/v1/pay', $key) . ' ' . call('/v1/boom', $key),
   '200 200 429 403 500', 'two calls, a third over quota, one without '
   . 'the scope, one the bank fails');
my $after = strftime('%Y-%m-%d', gmtime);

($s, $j) = usage('nova');
is($s, 200, 'the usage of a registry partner');
my @days = @{ $j->{days} };
is(scalar @days, 30, 'the last 30 days by default');
my $today = $days[-1];
ok($today->{date} eq $before || $today->{date} eq $after,
   'the last is today');
is($days[0]{date}, strftime('%Y-%m-%d', gmtime(time - 29 * 86400)),
   'the first 29 days before')
    if $before eq $after;
is_deeply($today->{products},
          { accounts => { calls => 3, refused => { quota_exceeded => 1 } },
            payments => { calls => 2,
                          refused => { insufficient_scope => 1,
                                       internal_error => 1 } } },
          'calls by product, problems answered by code');
is_deeply($today->{statuses}, { '2xx' => 2, '4xx' => 2, '5xx' => 1 },
          'answers by class');
like("$today->{latency_ms}{p50} $today->{latency_ms}{p99}",
     qr/^\d+(\.\d+)? \d+(\.\d+)?$/, 'latency p50 and p99 in ms');
ok($today->{latency_ms}{p50} <= $today->{latency_ms}{p99}, 'p50 <= p99');
is_deeply($days[0]{products}, {}, 'a day without calls has no product');
is_deeply($days[0]{statuses}, { '2xx' => 0, '4xx' => 0, '5xx' => 0 },
          'and zero answers');

($s, $j) = usage('acme');
is($s, 200, 'a partner of the configuration has a history too');

# ranges
($s, $j) = usage('nova', '?from=2026-01-01&to=2026-01-03');
is(join(',', map { $_->{date} } @{ $j->{days} }),
   '2026-01-01,2026-01-02,2026-01-03', 'from and to, both included');
($s, $j) = usage('nova', '?from=2026-01-01&to=2026-04-02');
is($s, 200, '92 days at once');
is(scalar @{ $j->{days} }, 92, 'are 92 days');
for my $bad (['?from=2026-01-01&to=2026-04-03', qr/at most 92 days/],
             ['?from=2026-02-01&to=2026-01-01', qr/"from" is after "to"/],
             ['?from=2026-13-01', qr/"from" must be a date, YYYY-MM-DD/],
             ['?to=yesterday', qr/"to" must be a date, YYYY-MM-DD/],
             ['?from=2026-01-01T00:00:00Z', qr/"from" must be a date/])
{
    ($s, $j) = usage('nova', $bad->[0]);
    is("$s $j->{code}", '400 invalid_request', "$bad->[0]: 400");
    like($j->{detail}, $bad->[1], 'saying why');
}
($s, $j) = usage('nobody');
is("$s $j->{code}", '404 not_found', 'an unknown partner: 404');
($s, $j) = admin('POST', '/admin/partners/nova/usage', {});
is("$s $j->{code}", '405 method_not_allowed', 'usage is read only');
($s) = admin('GET', '/admin/partners/nova/usage', undef, 'wrong');
is($s, 401, 'the admin key is needed');

# a restart keeps the history
stop_nginx();
start_nginx(\%conf);
($s, $j) = usage('nova');
is_deeply($j->{days}[-1]{statuses}, { '2xx' => 2, '4xx' => 2, '5xx' => 1 },
          'after a restart');
is($j->{days}[-1]{products}{accounts}{refused}{quota_exceeded}, 1,
   'with its refusals');

# the deleted partner's history stays
is((admin('DELETE', '/admin/partners/nova'))[0], 204, 'nova deleted');
is(call('/v1/keyed', $key), 401, 'its key is gone');
($s, $j) = usage('nova');
is($s, 200, 'its history stays readable');
is($j->{days}[-1]{products}{accounts}{calls}, 3, 'unchanged');
($s, $j) = usage('nova', '?from=2026-01-01&to=2026-01-02');
is($s, 404, 'but not for days it made no call');

stop_nginx();
done_testing();
