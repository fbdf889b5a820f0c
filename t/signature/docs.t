# docs/signing.md stays true: its Python, Java and shell snippets are the
# files under docs/signing/ (verbatim), and each one, run against a
# gateway with the demo partner's key, gets its signed payment through.
# The sample signature base and signature printed in the chapter are the
# ones the module's code makes for that request.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Signer;
use Digest::SHA qw(sha256_hex);

my $root = project_root();
my $doc = slurp("$root/docs/signing.md");
my $api_key = 'docs-key-3a1f';

for my $f (qw(sign_request.py SignRequest.java sign_request.sh)) {
    my $text = slurp("$root/docs/signing/$f");
    ok(index($doc, $text) >= 0, "docs/signing.md shows $f verbatim");
}

start_nginx({
    http_config => "openbank_zone openbank 1m;\n"
        . "openbank_signing_key gw.pem kid=gw-docs;\n"
        . "openbank_plan p { rate 100r/s; quota payments 1000/day; }\n"
        . "openbank_partner demo { plan p; scopes payments; api_key sha256:"
        . sha256_hex($api_key) . "; jwks demo.jwks.json; }\n",
    config => <<'EOT',
location /v1/payments {
    openbank_auth       api_key;
    openbank_scope      payments;
    openbank_signature  required;
    content_by_lua_block {
        ngx.req.read_body()
        ngx.status = 201
        ngx.say("paid by ", ngx.var.openbank_partner, ": ",
                ngx.req.get_body_data())
    }
}
EOT
    user_files => [
        ['conf/demo.jwks.json', slurp("$root/conf/demo/demo.jwks.json")],
        ['conf/gw.pem', slurp("$root/conf/demo/demo-ed25519.pem")],
    ],
});

$ENV{OB_BASE_URL} = 'http://127.0.0.1:' . server_port();
$ENV{OB_API_KEY} = $api_key;
$ENV{OB_KEY} = "$root/conf/demo/demo-ed25519.pem";
$ENV{OB_KID} = 'demo-2026-11';

my $paid = qr/^201 paid by demo: \{"debtor_account": "6222020000000001", "creditor_account": "6222020000000002", "amount": \{"value": "12.50", "currency": "CNY"\}, "reference": "invoice 42"\}/;

sub have { return system("command -v $_[0] >/dev/null 2>&1") == 0 }

# Debian's python3 (with python3-cryptography) first, else the PATH's
my ($python) = grep { system("$_ -c 'import cryptography' 2>/dev/null") == 0 }
               grep { $_ !~ m{^/} || -x $_ } '/usr/bin/python3', 'python3';

SKIP: {
    skip 'no python3 with the cryptography module (apt install '
         . 'python3-cryptography)', 1 unless $python;
    my $out = `$python $root/docs/signing/sign_request.py 2>&1`;
    like($out, $paid, 'the Python snippet pays');
}

SKIP: {
    skip 'java (JDK 17) is not installed', 1 unless have('java');
    my $out = `cd /tmp && java $root/docs/signing/SignRequest.java 2>&1`;
    like($out, $paid, 'the Java snippet pays');
}

SKIP: {
    skip 'curl or openssl is not installed', 1
        unless have('curl') && have('openssl');
    my $out = `sh $root/docs/signing/sign_request.sh 2>&1`;
    $out =~ s/^(.*) (\d{3})\n$/$2 $1\n/s;   # curl prints the status last
    like($out, $paid, 'the shell snippet pays');
}

# the chapter's sample: its base and signature are the module's
system("make -s -C $root objs/sigtool >/dev/null 2>&1") == 0
    or BAIL_OUT('objs/sigtool does not build');
my ($base) = $doc =~ /exactly these four lines.*?\n```\n(.*?)\n```/s;
my ($input) = $doc =~ /^    Signature-Input: (sig=.*nonce="kq3vCwOK7nVN2xdc")$/m;
my ($sig) = $doc =~ /^    Signature: sig=:(\S+):$/m;
my ($digest) = $base =~ /"content-digest": (\S+)/;
my $body = '{"debtor_account": "6222020000000001", "creditor_account": '
    . '"6222020000000002", "amount": {"value": "12.50", "currency": "CNY"}, '
    . '"reference": "invoice 42"}';
is($digest, content_digest($body), "the sample's Content-Digest is its body's");
my $msg = servroot() . '/sample.msg';
open my $m, '>', $msg or die $!;
print $m "method POST\nscheme http\nauthority 127.0.0.1:8080\n"
    . "target /v1/payments\nheader Content-Digest: $digest\n";
close $m;
is(`$root/objs/sigtool base $msg '$input' sig`, $base,
   'the sample base is what the gateway builds');
is(`$root/objs/sigtool sign $msg '$input' sig ed25519 $root/conf/demo/demo-ed25519.pem`,
   "$sig\n", 'the sample signature is the demo key\'s');

stop_nginx();
done_testing();
