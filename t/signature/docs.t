# docs/signing.md stays true: its Python, Java and shell snippets are the
# files under docs/signing/ (verbatim), and each one, run as the chapter
# says against `make run`'s configuration (conf/nginx.conf, the sandbox
# bank behind it), gets its signed payment through with an access token
# and with the API key; so do the chapter's own commands and its HMAC
# variant of the shell snippet.  The sample signature base and signature
# printed in the chapter are the ones the module's code makes for that
# request.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use OpenBank::Signer qw(content_digest slurp);
use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP qw(decode_json);
use MIME::Base64 qw(encode_base64);

my $root = $OpenBank::Gateway::ROOT;
my $doc = slurp("$root/docs/signing.md");
my $creds = OpenBank::Gateway::creds();

for my $f (qw(sign_request.py SignRequest.java sign_request.sh)) {
    my $text = slurp("$root/docs/signing/$f");
    ok(index($doc, $text) >= 0, "docs/signing.md shows $f verbatim");
}

my $gw = OpenBank::Gateway->new('signing-docs');
$gw->start;
my $port = $gw->port;

sub have { return system("command -v $_[0] >/dev/null 2>&1") == 0 }

# Debian's python3 (with python3-cryptography) first, else the PATH's; the
# chapter's commands say python3: a PATH where that is the one found
my ($python) = grep { system("$_ -c 'import cryptography' 2>/dev/null") == 0 }
               grep { $_ !~ m{^/} || -x $_ } '/usr/bin/python3', 'python3';
my $bin = tempdir(CLEANUP => 1);
symlink(($python =~ m{/} ? $python : `command -v $python` =~ s/\n//r),
        "$bin/python3") if $python;

sub token {
    my $r = HTTP::Tiny->new(timeout => 10)->request('POST',
        $gw->base . '/oauth2/token', {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     Authorization => 'Basic ' . encode_base64(
                         "$creds->{client_id}:$creds->{client_secret}", '') },
        content => 'grant_type=client_credentials' });
    return eval { decode_json($r->{content})->{access_token} } // '';
}

# how many payments the bank took in what the snippets printed: lines of
# the status, then the payment
sub paid {
    my ($out) = @_;
    my $n = 0;
    for my $line (split /\n/, $out) {
        $line =~ s/^(.*) (\d{3})$/$2 $1/ if $line !~ /^\d{3} /; # curl: last
        my ($json) = $line =~ /^201 (\{.*\})$/ or next;
        my $p = eval { decode_json($json) } or next;
        $n++ if ($p->{id} // '') =~ /^pay_[0-9a-f]{24}$/
             && $p->{status} eq 'pending'
             && $p->{amount}{value} eq '12.50'
             && $p->{amount}{currency} eq 'CNY'
             && $p->{reference} eq 'invoice 42';
    }
    return $n;
}

local $ENV{PATH} = "$bin:$ENV{PATH}";
local $ENV{OB_BASE_URL} = $gw->base;
local $ENV{OB_KEY} = "$root/conf/demo/demo-ed25519.pem";
local $ENV{OB_KID} = 'demo-2026-11';
local $ENV{OB_TOKEN};
local $ENV{OB_API_KEY};

my %run = (
    'the Python snippet' => [ 'python3', $python,
        "python3 $root/docs/signing/sign_request.py" ],
    'the Java snippet' => [ 'java (JDK 17)', have('java'),
        "cd /tmp && java $root/docs/signing/SignRequest.java" ],
    'the shell snippet' => [ 'curl and openssl',
        have('curl') && have('openssl'),
        "sh $root/docs/signing/sign_request.sh" ],
);

for my $name (sort keys %run) {
    my ($needs, $have, $cmd) = @{ $run{$name} };
    SKIP: {
        skip "$needs is not installed", 2 unless $have;
        for my $cred ('OB_TOKEN', 'OB_API_KEY') {
            local $ENV{OB_TOKEN} = $cred eq 'OB_TOKEN' ? token() : '';
            local $ENV{OB_API_KEY} = $cred eq 'OB_API_KEY'
                ? $creds->{api_key} : 'not-the-key';
            my $out = `$cmd 2>&1`;
            is(paid($out), 1, "$name pays, with $cred") or diag $out;
        }
    }
}

# the chapter's commands, from the project root, as written (the port
# aside)
my @sh = $doc =~ /```sh\n(.*?)```/sg;
my ($steps) = grep { /export OB_TOKEN=/ } @sh;
ok($steps, 'the chapter shows how to run a snippet with a token');
SKIP: {
    skip 'python3 with the cryptography module is not installed', 1
        unless $python && $steps;
    # the snippets' default base is 127.0.0.1:8080: OB_BASE_URL moves it
    (my $c = $steps) =~ s/127\.0\.0\.1:8080/127.0.0.1:$port/g;
    OpenBank::Gateway::spew("$bin/steps.sh", $c);
    my $out = `cd $root && sh $bin/steps.sh 2>&1`;
    is(paid($out), 2, 'they pay with the token, then with the API key')
        or diag $out;
}

# the HMAC variant: the shell snippet with OB_KID=hmac and its openssl
# pkeyutl line replaced as the chapter says
my ($hmac) = $doc
    =~ /## HMAC instead of a key pair\n.*?\n\n((?:    [^\n]*\n)+)/s;
ok($hmac && $hmac =~ /openssl dgst -sha256 -mac HMAC/,
   'the chapter shows the HMAC lines');
SKIP: {
    skip 'curl, openssl or python3 is not installed', 1
        unless $python && have('curl') && have('openssl') && $hmac;
    $hmac =~ s/^    //mg;
    (my $sh = slurp("$root/docs/signing/sign_request.sh"))
        =~ s/^signature=\$\(openssl pkeyutl .*\n/$hmac/m or die;
    my $file = "$bin/sign_hmac.sh";
    OpenBank::Gateway::spew($file, $sh);
    local $ENV{OB_KID} = 'hmac';
    local $ENV{OB_TOKEN} = token();
    my $out = `cd $root && sh $file 2>&1`;
    is(paid($out), 1, 'the HMAC-signed shell snippet pays') or diag $out;
}

$gw->stop;
$gw->check_log;

# the chapter's sample: its base and signature are the module's
-x "$root/objs/sigtool"
    or BAIL_OUT('objs/sigtool is not built: make objs/sigtool (make test builds it)');
my ($base) = $doc =~ /exactly these four lines.*?\n```\n(.*?)\n```/s;
my ($input) = $doc =~ /^    Signature-Input: (sig=.*nonce="kq3vCwOK7nVN2xdc")$/m;
my ($sig) = $doc =~ /^    Signature: sig=:(\S+):$/m;
my ($digest) = $base =~ /"content-digest": (\S+)/;
my ($body) = $doc
    =~ /^    Content-Type: application\/json\n(?:    .*\n)*\n    (\{.*\})$/m;
is($body, slurp("$root/docs/signing/sign_request.sh") =~ /^body='(.*)'$/m
          && $1, "the sample's body is the snippets'");
is($digest, content_digest($body), "the sample's Content-Digest is its body's");
my $msg = "$bin/sample.msg";
OpenBank::Gateway::spew($msg, "method POST\nscheme http\n"
    . "authority 127.0.0.1:8080\ntarget /v1/payments\n"
    . "header Content-Digest: $digest\n");
is(`$root/objs/sigtool base $msg '$input' sig`, $base,
   'the sample base is what the gateway builds');
is(`$root/objs/sigtool sign $msg '$input' sig ed25519 $root/conf/demo/demo-ed25519.pem`,
   "$sig\n", 'the sample signature is the demo key\'s');

done_testing();
