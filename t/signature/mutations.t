# Hostile Signature-Input, Signature and Content-Digest: a few hundred
# mutations of a valid signed request (truncated, bad base64, huge, wrong
# types, random bytes, over the parser's bounds) are all refused with a
# 4xx, never a 5xx; nginx keeps answering and logs no [alert].

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Signer;
use File::Temp qw(tempdir);
use Digest::SHA qw(sha256_hex);

my $dir = tempdir(CLEANUP => 1);
my $k = make_keys($dir);
my $body = '{"amount":{"value":"3.00","currency":"CNY"}}';

start_nginx({
    workers => 2,
    http_config => "openbank_zone openbank 4m;\n"
        . "openbank_signing_key gw.pem kid=gw-1;\n"
        . "openbank_plan p { rate 100000r/s; quota payments 1000000/day; }\n"
        . "openbank_partner acme { plan p; scopes payments; api_key sha256:"
        . sha256_hex('key-acme') . "; jwks partners/acme.jwks.json; }\n",
    config => <<'EOT',
location /v1/ {
    openbank_auth       api_key;
    openbank_signature  required;
    content_by_lua_block { ngx.say("ok") }
}
EOT
    user_files => [
        ['conf/gw.pem', slurp($k->{gw}{pem})],
        ['conf/partners/acme.jwks.json', '{"keys": [' . $k->{ed}{jwk} . ']}'],
    ],
});

sub fresh {
    my %h = map { split /: /, $_, 2 }
        sign_request(method => 'POST', path => '/v1/pay',
                     authority => 'localhost', body => $body,
                     alg => 'ed25519', key => $k->{ed}{pem},
                     keyid => 'ed-1');
    return \%h;
}

sub send_h {
    my ($h) = @_;
    return http_request('POST', '/v1/pay',
                        ['X-API-Key' => 'key-acme', %$h], $body);
}

is(send_h(fresh())->{status}, 200, 'the unmutated request is served');

# the mutations of one field's value
srand(20261123);
my @b64 = ('A' .. 'Z', 'a' .. 'z', 0 .. 9, '+', '/');
sub mutations {
    my ($v) = @_;
    my @m;
    # truncated at many places
    for (my $i = 0; $i < length $v; $i += int(length($v) / 40) || 1) {
        push @m, substr($v, 0, $i);
    }
    # one character replaced by a structural or hostile one
    for my $c ('(', ')', '"', '\\', ';', '=', ',', ':', ' ', '?', '*', '-',
               '.', '@', '{', "\t", 'Z', '0', '%', '(', '"', ';', ':') {
        my $i = int(rand(length $v));
        (my $w = $v) =~ s/^(.{$i})./$1$c/s;
        push @m, $w;
    }
    # a character dropped, doubled; random swaps
    for (1 .. 8) {
        my $i = int(rand(length $v));
        (my $w = $v) =~ s/^(.{$i})(.)/$1/s;
        push @m, $w;
        ($w = $v) =~ s/^(.{$i})(.)/$1$2$2/s;
        push @m, $w;
    }
    # huge: the value repeated, a long run inside
    push @m, $v x 40, $v . ', ' . join(', ', map { "k$_=$_" } 1 .. 300),
             substr($v, 0, 10) . ('a' x 12000);
    return @m;
}

my @cases;
my $base = fresh();
for my $field ('Signature-Input', 'Signature', 'Content-Digest') {
    for my $v (mutations($base->{$field})) {
        push @cases, [$field, $v];
    }
}

# wrong types and shapes, written out
my $params = ';created=' . time . ';keyid="ed-1";nonce="n1"';
push @cases, map { ['Signature-Input', $_] } (
    'sig="@method"' . $params,
    'sig=?1', 'sig=1', 'sig=1.5', 'sig=:AAAA:', 'sig=tok', 'sig',
    'sig=("@method" "@target-uri" "content-digest");created="now";keyid="ed-1";nonce="n"',
    'sig=("@method" "@target-uri" "content-digest");created=-5;keyid="ed-1";nonce="n"',
    'sig=("@method" "@target-uri" "content-digest");created=9999999999999999;keyid="ed-1";nonce="n"',
    'sig=("@method" "@target-uri" "content-digest");created=1.5;keyid="ed-1";nonce="n"',
    'sig=("@method" "@target-uri" "content-digest")' . $params . ';keyid=ed',
    'sig=("@method" "@target-uri" "content-digest")' . $params . ';nonce=?1',
    'sig=("@method" "@target-uri" "content-digest")' . $params . ';alg=1',
    'sig=(@method "@target-uri" "content-digest")' . $params,
    'sig=("@METHOD" "@target-uri" "content-digest")' . $params,
    'sig=("@method";req "@target-uri" "content-digest")' . $params,
    'sig=("@method";sf "@target-uri" "content-digest")' . $params,
    'sig=("@method" "@target-uri" "content-digest" "@status")' . $params,
    'sig=("@method" "@target-uri" "content-digest" "@query-param")' . $params,
    'sig=("@method" "@target-uri" "content-digest" "@signature-params")' . $params,
    'sig=("@method" "@target-uri" "content-digest" "")' . $params,
    'sig=("@method" "@target-uri" "content-digest" "a\\"b")' . $params,
    'sig=(' . join(' ', map { "\"x-h$_\"" } 1 .. 30) . ')' . $params,
    'sig=("@method")' . join('', map { ";p$_=$_" } 1 .. 12),
    join(', ', map { "s$_=()" } 1 .. 20) . ', sig=("@method")' . $params,
    'sig=("@method" "@target-uri" "content-digest")' . $params . ',',
    ',sig=("@method" "@target-uri" "content-digest")' . $params,
    'sig=("@method" "@target-uri" "content-digest"' . $params,
    'sig=("@method" "@target-uri" "content-digest")' . $params
        . ', sig=("@method")' . $params,
    'SIG=("@method" "@target-uri" "content-digest")' . $params,
    "sig=(\"\@method\"\t\"\@target-uri\")" . $params,
    'sig=("@method" "@target-uri" "content-digest");created=' . time
        . ';keyid="' . ('k' x 3000) . '";nonce="n"',
    'sig=("@method" "@target-uri" "content-digest");created=' . time
        . ';keyid="ed-1";nonce="' . ('n' x 200) . '"',
    'sig=("@method" "@target-uri" "content-digest");created=' . time
        . ';keyid="ed\\-1";nonce="n"',
);
push @cases, map { ['Signature', $_] } (
    'sig=("a")', 'sig=?1', 'sig=1', 'sig="AAAA"', 'sig=:AAA:', 'sig=:A===:',
    'sig=:AA=A:', 'sig=:' . ('A' x 4000) . ':', 'sig=::', 'sig=:', 'sig',
    'sig=:AAAA:, sig=:AAAA:', 'other=:AAAA:', 'sig=:****:',
);
push @cases, map { ['Content-Digest', $_] } (
    'sha-256=:AAAA:', 'sha-256="x"', 'sha-256=1', 'sha-256=?1', 'md5=:AAAA:',
    'sha-256=:' . ('A' x 43) . '=:, sha-512=:AAAA:', 'sha-256=(:AAAA:)',
    'sha-256', 'sha-256=:!!!!:', 'sha-512=:' . ('A' x 5000) . ':',
);

my $off = error_log_offset();
my (%by_status, @bad);
for my $c (@cases) {
    my ($field, $v) = @$c;
    my $h = fresh();
    $h->{$field} = $v;
    my $res = send_h($h);
    $by_status{ $res->{status} }++;
    push @bad, "$field: $v -> $res->{status}"
        if $res->{status} < 400 || $res->{status} > 499;
}

ok(@cases >= 300, scalar(@cases) . ' mutated requests');
is(scalar(@bad), 0, 'every one is refused with a 4xx')
    or diag(join("\n", map { substr($_, 0, 300) } @bad[0 .. ($#bad < 9 ? $#bad : 9)]));
note(join(', ', map { "$_: $by_status{$_}" } sort keys %by_status));
is(send_h(fresh())->{status}, 200, 'nginx still serves a good request');
unlike(error_log_since($off), qr/\[(alert|crit|emerg)\]|signal \d+|exited on/,
       'no [alert], [crit] or crash in the log');

stop_nginx();
done_testing();
