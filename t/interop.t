# Interoperability with clients nobody here wrote, from the npm registry
# (t/interop/package.json, installed by `make deps` with `npm ci`): jose
# verifies the access tokens of the gateway started on `make run`'s
# configuration against its /.well-known/jwks.json and signs a
# private_key_jwt assertion it accepts; http-message-signatures signs
# requests with the demo partner's Ed25519 key and its HMAC secret, with
# a token and with the API key, and verifies the gateway's signed
# responses with the JWKS.  Each line the scripts print is an assertion.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;

my $root = $OpenBank::Gateway::ROOT;
my $dir = "$root/t/interop";

system('command -v node >/dev/null 2>&1') == 0
    or plan skip_all => 'node is not installed (make deps installs it)';
-d "$dir/node_modules/jose" && -d "$dir/node_modules/http-message-signatures"
    or plan skip_all => 't/interop/node_modules is absent: '
                        . 'run `make deps` (npm ci in t/interop)';

# as `make run` does: the issuer moves with the port
my $gw = OpenBank::Gateway->new('interop', edit => sub {
    my $c = shift;
    my ($port) = $c =~ /listen  127\.0\.0\.1:(\d+);/ or die;
    $c =~ s{(openbank_issuer\s+)http://127\.0\.0\.1:8080;}
           {${1}http://127.0.0.1:$port;} or die;
    return $c;
});
$gw->start;

local $ENV{OB_BASE_URL} = $gw->base;
local $ENV{OB_ROOT} = $gw->dir;

for my $script (qw(token.mjs sign.mjs)) {
    my $out = `cd $dir && node $script 2>&1`;
    my $rc = $?;
    my $n = 0;
    for my $line (split /\n/, $out) {
        if ($line =~ /^(not )?ok - (.*?)(?: # (.*))?$/) {
            $n++;
            ok(!$1, "$script: $2") or diag($3 // '');
        }
    }
    ok($n > 5, "$script: reports its checks ($n)") or diag($out);
    is($rc, 0, "$script exits 0") or diag($out);
}

$gw->stop;
$gw->check_log;

done_testing();
