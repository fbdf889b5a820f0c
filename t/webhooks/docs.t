# docs/webhooks.md's verification snippets, run as they are against a
# real delivery: the Python Standard Webhooks and RFC 9421 functions and
# the Java verifier accept it, and refuse it with its body tampered.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Webhooks;
use JSON::PP;
use Encode ();

my $json = JSON::PP->new->canonical->utf8;
my $doc = do { local $/; open my $f, '<', project_root() . '/docs/webhooks.md'
               or die; <$f> };
my @python = $doc =~ /```python\n(.*?)```/sg;
my ($java) = $doc =~ /```java\n(.*?)```/s;
is(scalar @python, 2, 'the guide has two Python snippets');
ok($java, 'and a Java one');

my $rport = start_receiver();
my %conf = webhooks_conf();
start_nginx(\%conf);

my $url = "http://127.0.0.1:$rport/docs";
my ($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
                  { url => $url, events => ['*'] });
my $secret = $j->{secret};
($s) = ingest({ partner => 'acme', type => 'escrow.released',
                data => { id => 'esc_1', note => "\x{4e2d}" } });
is($s, 202, 'an event');
my ($got) = wait_got(1);
ok($got, 'delivered');

my $dir = servroot() . '/docs';
mkdir $dir;
my $pem = `openssl pkey -in @{[project_root()]}/t/keys/gw-es256.pem -pubout`;
open my $f, '>', "$dir/case.json" or die;
print $f $json->encode({ secret => $secret, url => $url,
                         headers => $got->{headers}, body => $got->{body},
                         pem => $pem });
close $f;

open $f, '>', "$dir/check.py" or die;
print $f join("\n", @python), <<'EOT';

import json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key

case = json.load(open(sys.argv[1]))
body = case["body"].encode()
if sys.argv[2] == "tampered":
    body = body.replace(b"esc_1", b"esc_2")
key = load_pem_public_key(case["pem"].encode())
results = []
for check in (lambda: verify_webhook(case["secret"], case["headers"], body),
              lambda: verify_gateway_signature(key, case["url"],
                                               case["headers"], body)):
    try:
        check()
        results.append("ok")
    except Exception as e:
        results.append("refused")
print(" ".join(results))
EOT
close $f;

is(`/usr/bin/python3 $dir/check.py $dir/case.json as-sent`, "ok ok\n",
   'Python: both signatures hold');
is(`/usr/bin/python3 $dir/check.py $dir/case.json tampered`,
   "refused refused\n", 'Python: a tampered body is refused by both');

SKIP: {
    skip 'no javac (make deps installs it)', 2 unless -x '/usr/bin/javac';
    open $f, '>', "$dir/WebhookVerifier.java" or die;
    print $f $java;
    close $f;
    open $f, '>', "$dir/Check.java" or die;
    print $f <<'EOT';
import java.nio.file.Files;
import java.nio.file.Paths;

public final class Check {
    public static void main(String[] a) throws Exception {
        byte[] body = Files.readAllBytes(Paths.get(a[4]));
        try {
            WebhookVerifier.verify(a[0], a[1], a[2], a[3], body);
            System.out.println("ok");
        } catch (SecurityException e) {
            System.out.println("refused");
        }
    }
}
EOT
    close $f;
    system('javac', '-d', $dir, "$dir/WebhookVerifier.java", "$dir/Check.java")
        == 0 or diag('javac failed');
    my $h = $got->{headers};
    for my $case (['as-sent', $got->{body}, "ok\n"],
                  ['tampered', $got->{body} =~ s/esc_1/esc_2/r, "refused\n"]) {
        open $f, '>:raw', "$dir/body" or die;
        print $f Encode::encode_utf8($case->[1]);
        close $f;
        my $out = `java -cp $dir Check '$secret' '$h->{'webhook-id'}' '$h->{'webhook-timestamp'}' '$h->{'webhook-signature'}' $dir/body`;
        is($out, $case->[2], "Java: $case->[0]");
    }
}

stop_nginx();
done_testing();
