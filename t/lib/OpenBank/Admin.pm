package OpenBank::Admin;

# Helpers of the Admin API tests (t/admin/*.t): the configuration they
# share (the token tests' one, with the Admin API and an API-key
# location), and calls with the admin key.

use strict;
use warnings;

use Exporter 'import';
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use OpenBank::Test;
use OpenBank::Tokens;

our @EXPORT = qw($ADMIN_KEY admin_config admin admin_raw api_key_call
                 bearer_call);

our $ADMIN_KEY = 'admin-key-of-the-tests-0123456789';

sub admin_config {
    my (%o) = @_;
    my $extra = delete $o{extra_http};
    my ($http, $config) = token_config(
        extra_http => "openbank_admin_key sha256:" . sha256_hex($ADMIN_KEY)
                      . ";\nopenbank_plan q { rate 700r/s burst=700; "
                      . "quota accounts 1000/day; }\n"
                      . ($extra // ''),
        %o);
    $config .= <<'EOT';
location /admin/ { openbank_admin_api; }
location = /openbank/status { openbank_status; }
location /v1/signed {
    openbank_auth api_key;
    openbank_scope accounts;
    openbank_signature required;
    content_by_lua_block {
        ngx.say("signed by ", ngx.var.openbank_partner)
    }
}
location /v1/keyed {
    openbank_auth api_key;
    openbank_scope accounts;
    openbank_product accounts;
    content_by_lua_block {
        ngx.say("partner=", ngx.var.openbank_partner, " pid=",
                ngx.worker.pid())
    }
}
location /v1/who {
    openbank_auth api_key;
    openbank_scope accounts;
    content_by_lua_block {
        ngx.say("partner=", ngx.var.openbank_partner, " pid=",
                ngx.worker.pid())
    }
}
EOT
    return ($http, $config);
}

my $json = JSON::PP->new->canonical->utf8;

# admin('POST', '/admin/partners', {name => ...}) -> ($status, $json, $res)
sub admin {
    my ($method, $path, $body, $key) = @_;
    my %h = (Authorization => 'Bearer ' . ($key // $ADMIN_KEY));
    $h{'Content-Type'} = 'application/json' if defined $body;
    my $res = http_request($method, $path, \%h,
                           defined $body ? (ref $body ? $json->encode($body)
                                                      : $body)
                                         : undef);
    my $data = eval { $json->decode($res->body) };
    return ($res->status, $data, $res);
}

sub admin_raw { return admin(@_) }

sub api_key_call {
    my ($key) = @_;
    return http_request('GET', '/v1/keyed', { 'X-API-Key' => $key });
}

sub bearer_call {
    my ($token, $path) = @_;
    return http_request('GET', $path // '/v1/accounts',
                        { Authorization => "Bearer $token" });
}

1;
