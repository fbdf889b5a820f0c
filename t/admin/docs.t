# The curl examples of docs/admin.md run as they are written, in order,
# against a gateway with the Admin API, and none is refused.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use IPC::Run qw(run);

my ($http, $config) = admin_config(
    extra_http => "openbank_plan demo { rate 100r/s; quota payments 100/day; }\n"
                  . "openbank_webhook_allow http://127.0.0.1;\n");
$config .= "location = /internal/events { openbank_events_ingest; }\n";
start_nginx({ http_config => $http, config => $config, workers => 2 });

my $doc = do { local $/; open my $f, '<', project_root() . '/docs/admin.md'
               or die $!; <$f> };
my @blocks = $doc =~ /^```sh\n(.*?)^```$/msg;
cmp_ok(scalar @blocks, '>=', 8, 'the examples are found');

local $ENV{GW} = 'http://127.0.0.1:' . server_port();
local $ENV{ADMIN_KEY} = $ADMIN_KEY;
local $ENV{HOOK_URL} = 'http://127.0.0.1:9/hooks/openbank';

my $n = 0;
for my $sh (@blocks) {
    $n++;
    next if $sh =~ /^GW=/m;             # the settings the test makes
    my ($out, $err) = ('', '');
    run(['sh', '-ec', $sh], \undef, \$out, \$err);
    is($?, 0, "example $n runs") or diag $err;
    unlike($out, qr/"code":"|^[45]\d\d$/m, "example $n is not refused")
        or diag $out;
}

my ($s, $j) = admin('GET', '/admin/partners/nova/credentials');
cmp_ok(scalar @{ $j->{credentials} }, '>=', 3, 'the examples made credentials');
($s, $j) = admin('GET', '/admin/audit');
ok(scalar(grep { $_->{action} eq 'partner.suspend' } @{ $j->{events} }),
   'and the audit log has them');
is(scalar(grep { $_->{action} =~ /^webhook_endpoint\./ } @{ $j->{events} }),
   2, 'a webhook endpoint made and deleted');

stop_nginx();
done_testing();
