# docs/integrators.md stays true: its curl steps, run as written in one
# shell (the port aside), get their answers from the sandbox
# (conf/nginx.conf) with the API key alone, its Python example runs from
# verification to a reconciled statement, and its curl examples' paths
# are routes the gateway answers.

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

# the curl steps of sections 1 to 6, one shell, from the project root
my @sh = $guide =~ /```sh\n(.*?)```/sg;
is(shift(@sh), "make run          # installs what is missing, builds, starts "
   . "on 127.0.0.1:8080\n", 'the guide starts with make run');
my $port = $gw->port;
my ($id, $n) = ('', 0);
my @expect = (
    [ 'the accounts', qr/^\{"accounts":\[/ ],
    [ 'the payee checked', qr/"result":"close_match"/ ],
    [ 'a payment made', qr{^HTTP/1\.1\ 201\ Created\r?\n.*
                           ^Location:\ /v1/payments/(pay_[0-9a-f]{24})\r?\n}msx ],
    [ 'the payment', qr/"id":"pay_/ ],
    [ 'the payments, a page', qr/"payments":\[/ ],
    [ 'the statement', qr/"accounts":\[\{"/ ],
    [ 'an escrow', qr/"status":"awaiting_funding"/ ],
);
is(scalar @sh, scalar @expect, 'the guide has its curl steps');
my $exports = '';
for my $step (@sh) {
    my ($what, $re) = @{ $expect[$n++] // ['?', qr/^$/] };
    (my $c = $step) =~ s/127\.0\.0\.1:8080/127.0.0.1:$port/g;
    $c =~ s/pay_3f0c\.\.\./$id/g;        # the id of the payment made above
    OpenBank::Gateway::spew($gw->dir . '/step.sh', "$exports$c");
    my $out = `cd $root && bash @{[ $gw->dir ]}/step.sh 2>&1`;
    like($out, $re, "step $n: $what") or diag $out;
    unlike($out, qr/urn:openbank:problem/, "step $n: no problem");
    ($id) = $out =~ $re if $n == 3;
    $exports .= join '', $c =~ /^(export .*\n)/mg;   # the shell's variables
}

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
