# docs/integrators.md stays true: its Python example runs against the
# sandbox (conf/nginx.conf) from verification to a reconciled statement,
# and its curl examples' paths are routes the gateway answers.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use JSON::PP;

my $root = $OpenBank::Gateway::ROOT;
my $guide = OpenBank::Gateway::slurp("$root/docs/integrators.md");

my ($py) = $guide =~ /## 7\. The same in Python.*?```python\n(.*?)```/s;
ok($py, 'the guide has its Python example');

system('python3', '-c', 'import requests') == 0
    or plan skip_all => 'python3-requests is not installed';

my $gw = OpenBank::Gateway->new('integrators', settle_delay => 0.5);
my $creds_file = $gw->dir . '/conf/demo/credentials.json';
my $creds = decode_json(OpenBank::Gateway::slurp($creds_file));
$creds->{base_url} = $gw->base;
OpenBank::Gateway::spew($creds_file, encode_json($creds));
OpenBank::Gateway::spew($gw->dir . '/guide.py', $py);
$gw->start;

my $out = `cd @{[ $gw->dir ]} && python3 guide.py 2>&1`;
is($?, 0, 'the Python example runs to its end') or diag($out);
like($out, qr/^settled pay_[0-9a-f]{24} and reconciled \d{4}-\d\d-\d\d$/m,
     'a settled payment and a reconciled statement');

# the curl examples' endpoints answer a GET as routes do: 200, 400 without
# the query, 405 where they take POST, the bank's 404 for an unknown id
my %status = ('/v1/accounts' => 200, '/v1/payments' => 200,
              '/v1/statements' => 400, '/v1/payments/pay' => 404,
              '/v1/account-verifications' => 405, '/v1/escrows' => 405);
my %seen;
for my $path ($guide =~ m{\$OB(/v1/[a-z/-]+)}g) {
    next if $seen{$path}++;
    my $r = $gw->get($path);
    is($r->{status}, $status{$path} // 'a status in %status',
       "GET $path: " . ($status{$path} // '?'));
    ok($r->{status} != 404 || ($r->{json}{detail} // '') !~ /no resource/i,
       "$path is a route");
}

$gw->stop;
$gw->check_log;

done_testing();
