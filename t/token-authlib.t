# authlib (Debian's python3-authlib), the most used Python OAuth client,
# against the demo of `make run` (conf/nginx.conf): client_secret_basic and
# private_key_jwt with the demo partner's Ed25519 key, each token then used
# on GET /v1/accounts.  authlib signs its assertions with exp an hour ahead:
# the demo's default bound (5 minutes) refuses that and says which bound;
# with the exp the guide sets (docs/tokens.md) it passes; with
# openbank_assertion_lifetime 1h authlib's defaults pass as they are, and
# the assertion's jti is still used once.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use JSON::PP qw(decode_json encode_json);
use IPC::Run ();
use Cwd qw(getcwd);

my $python = '/usr/bin/python3';
system($python, '-c', 'import authlib, requests') == 0
    or plan skip_all => 'python3-authlib is not installed';

my $root = $OpenBank::Gateway::ROOT;
my $creds = OpenBank::Gateway::creds();

# one authlib client: MODE is basic, pkjwt (exp 60 s ahead, as the guide
# does), pkjwt-default (authlib's own exp) or replay (authlib's default
# assertion, sent twice); it prints one JSON object
my $client = <<'PY';
import json, os, sys, time
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.common.errors import AuthlibBaseError
from authlib.jose import JsonWebKey, jwt
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign

mode = sys.argv[1]
creds = json.load(open("conf/demo/credentials.json"))
base = os.environ["OB_BASE_URL"]
token_url = f"{base}/oauth2/token"
key = JsonWebKey.import_key(open(creds["signing_key"]).read(),
                            {"kid": creds["kid"]})


class ShortPrivateKeyJWT(PrivateKeyJWT):
    def sign(self, auth, token_endpoint):
        return private_key_jwt_sign(auth.client_secret,
                                    client_id=auth.client_id,
                                    token_endpoint=token_endpoint,
                                    alg=self.alg, expires_in=60)


out = {}
if mode == "basic":
    session = OAuth2Session(creds["client_id"], creds["client_secret"],
                            token_endpoint_auth_method="client_secret_basic",
                            scope="accounts")
elif mode == "replay":
    assertion = private_key_jwt_sign(key, creds["client_id"], token_url,
                                     alg="EdDSA")
    claims = jwt.decode(assertion, key)
    out["exp_ahead"] = claims["exp"] - int(time.time())
    out["kid"] = claims.header.get("kid")
    form = {"grant_type": "client_credentials",
            "client_assertion_type":
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}
    out["statuses"] = []
    for _ in range(2):
        r = requests.post(token_url, data=form)
        out["statuses"].append(r.status_code)
        out["last"] = r.json()
    print(json.dumps(out))
    sys.exit(0)
else:
    auth = (ShortPrivateKeyJWT if mode == "pkjwt" else PrivateKeyJWT)(
        token_url, alg="EdDSA")
    session = OAuth2Session(creds["client_id"], key,
                            token_endpoint_auth_method="private_key_jwt")
    session.register_client_auth_method(auth)

out["tokens"] = []
try:
    # two tokens: each request gets a new assertion (a new jti)
    for _ in range(2):
        token = session.fetch_token(token_url, grant_type="client_credentials")
        out["tokens"].append(token["token_type"])
    r = session.get(f"{base}/v1/accounts")
    out["status"] = r.status_code
    out["accounts"] = [a["number"] for a in r.json()["accounts"]]
except AuthlibBaseError as e:
    out["error"] = e.error
    out["description"] = e.description
print(json.dumps(out))
PY

sub authlib {
    my ($gw, $mode) = @_;
    my ($out, $err) = ('', '');
    local $ENV{OB_BASE_URL} = $gw->base;
    my $cwd = getcwd();
    chdir $root or die;
    IPC::Run::run([$python, '-c', $client, $mode], \undef, \$out, \$err);
    chdir $cwd;
    my $res = eval { decode_json($out) };
    diag("$mode: $out$err") unless $res;
    return $res || {};
}

my @accounts = map { $_->{number} } @{ $creds->{accounts} };

# the copy's issuer is its own address, as with `make run OB_PORT=...`
sub issuer {
    my ($conf) = @_;
    my ($port) = $conf =~ /listen  127\.0\.0\.1:(\d+);/ or die;
    $conf =~ s{openbank_issuer(\s+)http://127\.0\.0\.1:8080;}
              {openbank_issuer$1http://127.0.0.1:$port;} or die;
    return $conf;
}

# --- the demo as it is: exp at most 5 minutes ahead ---

my $gw = OpenBank::Gateway->new('authlib', edit => \&issuer);
$gw->start;

my $r = authlib($gw, 'basic');
is_deeply($r->{tokens}, ['Bearer', 'Bearer'],
          'client_secret_basic: authlib gets tokens');
is($r->{status}, 200, 'and its token reads GET /v1/accounts');
is_deeply($r->{accounts}, \@accounts, 'the demo partner\'s accounts');

$r = authlib($gw, 'pkjwt');
is_deeply($r->{tokens}, ['Bearer', 'Bearer'],
          'private_key_jwt, exp 60 s ahead: authlib gets two tokens');
is($r->{status}, 200, 'and its token reads GET /v1/accounts');
is_deeply($r->{accounts}, \@accounts, 'the demo partner\'s accounts');

$r = authlib($gw, 'pkjwt-default');
is($r->{error}, 'invalid_client',
   'authlib\'s default exp (an hour ahead) is refused');
is($r->{description},
   "the assertion's exp is more than 300 s ahead "
   . "(openbank_assertion_lifetime)",
   'and the refusal says the bound and its directive');

$gw->stop;
$gw->check_log;

# --- the operator raised the bound to an hour ---

my $long = OpenBank::Gateway->new('authlib-1h', edit => sub {
    my $conf = issuer($_[0]);
    $conf =~ s/(openbank_clock_skew\s+\S+;\n)/$1    openbank_assertion_lifetime 1h;\n/
        or die 'conf/nginx.conf has no openbank_clock_skew';
    return $conf;
});
$long->start;

$r = authlib($long, 'pkjwt-default');
is_deeply($r->{tokens}, ['Bearer', 'Bearer'],
          'openbank_assertion_lifetime 1h: authlib\'s defaults get tokens')
    or diag explain $r;
is($r->{status}, 200, 'and its token reads GET /v1/accounts');

$r = authlib($long, 'replay');
cmp_ok($r->{exp_ahead}, '>', 3000, 'authlib\'s assertion: exp an hour ahead');
is($r->{kid}, $creds->{kid}, 'and the demo key\'s kid in its header');
is_deeply($r->{statuses}, [200, 401], 'accepted once, then refused');
is($r->{last}{error_description}, "the assertion's jti was already used",
   'as a replay');

$long->stop;
$long->check_log;

done_testing();
