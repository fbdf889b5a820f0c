# nginx -s reload applies partners and keys at once; it refuses to resize
# the shared zone (that would silently empty it) and a broken
# configuration, and in both cases the gateway keeps serving the old one.

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);

sub http_config {
    my (%o) = @_;
    my $conf = "openbank_zone openbank " . ($o{zone} // '1m') . ";\n"
        . "openbank_plan p { rate 100r/s; quota accounts 100/day; }\n"
        . ($o{extra} // '');
    for my $name (@{ $o{partners} }) {
        $conf .= "openbank_partner $name { plan p; scopes accounts; "
            . "api_key sha256:" . sha256_hex("key-$name") . "; }\n";
    }
    return $conf;
}

my $config = <<'EOT';
location /v1/ {
    openbank_auth api_key;
    openbank_scope accounts;
    content_by_lua_block { ngx.say("hello ", ngx.var.openbank_partner) }
}
EOT

sub call {
    my ($key) = @_;
    my $res = http_request('GET', '/v1/accounts', { 'X-API-Key' => $key });
    return "$res->{status} $res->{body}";
}

start_nginx({ http_config => http_config(partners => ['acme']),
              config => $config, workers => 2 });

is(call('key-acme'), "200 hello acme\n", 'acme is served');
like(call('key-globex'), qr/^401 .*"code":"invalid_token"/,
     'globex is not a partner yet');

# a partner added by reload is served by every worker at once
ok(reload_nginx({ http_config => http_config(partners => ['acme', 'globex']),
                  config => $config, workers => 2 }),
   'reload with a new partner');
is(call('key-globex'), "200 hello globex\n", "globex is served after reload")
    for 1 .. 4;
is(call('key-acme'), "200 hello acme\n", 'acme still is');

# a removed partner is refused from the next request on
ok(reload_nginx({ http_config => http_config(partners => ['globex']),
                  config => $config, workers => 2 }),
   'reload without acme');
like(call('key-acme'), qr/^401 /, 'acme is refused after its removal')
    for 1 .. 4;

# resizing the zone on reload is refused: the old configuration serves on
my $offset = error_log_offset();
my ($reloaded) = reload_nginx({ http_config => http_config(
                                    partners => ['globex', 'acme'],
                                    zone => '2m'),
                                config => $config, workers => 2 });
ok(!$reloaded, 'a reload that resizes the zone is refused');
like(error_log_since($offset),
     qr/\[emerg\].*zone "openbank" cannot change its size on reload \(from 1048576 to 2097152\): stop and start nginx to resize it/,
     'and the error log says why');
is(call('key-globex'), "200 hello globex\n", 'the old configuration serves');
like(call('key-acme'), qr/^401 /, 'including its partners');

# a broken configuration is refused the same way
$offset = error_log_offset();
($reloaded) = reload_nginx({ http_config => http_config(
                                 partners => ['globex'],
                                 extra => "openbank_plan q { rate 1r/x; }\n"),
                             config => $config, workers => 2 });
ok(!$reloaded, 'a reload with an invalid rate is refused');
like(error_log_since($offset), qr/\[emerg\].*invalid rate "1r\/x"/,
     'and the error log says why');
is(call('key-globex'), "200 hello globex\n", 'the old configuration serves');

stop_nginx();
done_testing();
