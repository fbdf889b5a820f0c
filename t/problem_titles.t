# One title per problem code: the gateway's table
# (ngx_http_openbank_problem.c) is the only one, the sandbox bank
# (lua/openbank/problem.lua) lists only its codes' statuses and gives the
# gateway's titles, every code the bank gives is one of the gateway's, and
# docs/errors.md and docs/openapi.yaml list every code.  The tables are
# read from the sources, then each code is requested from the bank and
# each status nginx may end a request with from the gateway.

use lib 't/lib';
use OpenBank::Test;
use JSON::PP qw(decode_json);

my $root = project_root();

sub slurp {
    open my $fh, '<', "$root/$_[0]" or die "$_[0]: $!";
    local $/;
    return scalar <$fh>;
}

# the gateway's table: [CODE] = { ngx_string("code"), ngx_string("Title") }
my $c = slurp('ngx_openbank_module/ngx_http_openbank_problem.c');
my ($c_table) = $c =~ /ngx_http_openbank_problem_types\[[A-Z_]*\] =\s*\{(.*?)\n\};/s;
ok $c_table, "the gateway's table is found";
my %c_title = $c_table =~ /\{\s*ngx_string\("(\w+)"\),\s*ngx_string\("([^"]+)"\)\s*\}/g;

# each entry sits at the index of the enum constant that names its code
my @entries = $c_table =~ /\[NGX_HTTP_OPENBANK_PROBLEM_(\w+)\] =\s*\{\s*ngx_string\("(\w+)"\)/g;
while (my ($name, $code) = splice @entries, 0, 2) {
    is(lc $name, $code, "NGX_HTTP_OPENBANK_PROBLEM_$name is \"$code\"");
}

# the bank's table: code = status, and no title of its own
my $lua = slurp('lua/openbank/problem.lua');
my ($lua_table) = $lua =~ /\nlocal STATUS = \{(.*?)\n\}/s;
ok $lua_table, "the bank's table is found";
my %lua_status = $lua_table =~ /^\s*(\w+)\s*=\s*(\d+),/mg;
(my $lua_code = $lua) =~ s/^\s*--.*$//mg;
unlike $lua_code, qr/"Invalid |"Not found"|"Rate limited"/,
       'the bank writes no title of its own';

cmp_ok scalar(keys %c_title), '>=', 20, 'the gateway has its codes';
cmp_ok scalar(keys %lua_status), '>=', 10, 'the bank has its codes';

for my $code (sort keys %lua_status) {
    ok exists $c_title{$code}, "$code of the bank is a code of the gateway";
}

for my $code (qw(method_not_allowed internal_error)) {
    ok exists $c_title{$code}, "the gateway has $code";
    ok exists $lua_status{$code}, "the bank has $code";
}
is $c_title{invalid_token}, 'Invalid credential',
   'invalid_token covers every credential (API keys too)';

# the documents list every code
my $errors = slurp('docs/errors.md');
my $openapi = slurp('docs/openapi.yaml');
my ($enum) = $openapi =~ /\n    Problem:\n.*?\bcode:.*?enum: \[([^\]]*)\]/s;
ok $enum, "openapi.yaml's Problem.code has an enum";
my %enum = map { $_ => 1 } split /[\s,]+/, $enum // '';
for my $code (sort keys %c_title) {
    ok $errors =~ /^\|[^\n]*`\Q$code\E`/m, "docs/errors.md's table has $code";
    ok $enum{$code}, "openapi.yaml's Problem.code has $code";
}


# --- the same titles on the wire
my %statuses = (401 => 'invalid_token', 403 => 'insufficient_scope',
                404 => 'not_found', 405 => 'method_not_allowed',
                413 => 'payload_too_large', 429 => 'rate_limited',
                500 => 'internal_error', 502 => 'upstream_unavailable',
                503 => 'upstream_unavailable');

start_nginx({
    http_config => "openbank_zone openbank 1m;\n",
    config => join('', map { <<"EOT" } sort keys %statuses) . <<'EOT',
location = /gw/$_ {
    openbank_api on;
    return $_;
}
EOT
location ~ ^/bank/(\w+)$ {
    content_by_lua_block {
        require("openbank.problem").send(ngx.var[1], "detail")
    }
}
EOT
});

for my $code (sort keys %lua_status) {
    my $res = http_request(GET => "/bank/$code");
    my $json = eval { decode_json($res->body) } // {};
    is $res->status, $lua_status{$code}, "the bank's $code: its status";
    is $json->{code}, $code, "the bank's $code: its code";
    is $json->{title}, $c_title{$code}, "the bank's $code: the gateway's title";
}

for my $status (sort keys %statuses) {
    my $code = $statuses{$status};
    my $res = http_request(GET => "/gw/$status");
    my $json = eval { decode_json($res->body) } // {};
    is $res->status, $status, "the gateway's $status";
    is scalar $res->header('Content-Type'), 'application/problem+json',
       "the gateway's $status: a problem";
    is $json->{code}, $code, "the gateway's $status: $code";
    is $json->{title}, $c_title{$code}, "the gateway's $status: its title";
}

stop_nginx();
done_testing();
