# What `make run` serves: the real conf/nginx.conf (only its port and
# daemon mode changed) with the sandbox bank behind it answers the demo
# partner of conf/demo/credentials.json with exactly the accounts that file
# promises.

use lib 't/lib';
use OpenBank::Test;
use HTTP::Tiny;
use JSON::PP qw(decode_json);
use POSIX qw(WNOHANG);

my $root = project_root();
my $dir = servroot() . '/demo';
my $port = server_port();
my $module = $ENV{TEST_NGINX_MODULE} || "$root/objs/ngx_openbank_module.so";

my $creds = decode_json(slurp("$root/conf/demo/credentials.json"));

# a copy of the project as make run sees it: conf/, lua/, objs/, run/
system('rm', '-rf', $dir) == 0 or die;
system('mkdir', '-p', "$dir/run/tmp", "$dir/run/bank", "$dir/objs") == 0
    or die;
system('cp', '-r', "$root/conf", "$root/lua", "$dir/") == 0 or die;
symlink($module, "$dir/objs/ngx_openbank_module.so") or die;
system('chown', 'nobody', "$dir/run/bank") if $> == 0;

my $conf = slurp("$dir/conf/nginx.conf");
ok($conf =~ s/listen  127\.0\.0\.1:8080;/listen  127.0.0.1:$port;/,
   'conf/nginx.conf listens on 127.0.0.1:8080');
$conf =~ s/daemon            off;/daemon            on;/ or die;
$conf =~ s/error_log         stderr notice;/error_log run\/error.log notice;/
    or die;
spew("$dir/conf/nginx.conf", $conf);

local %ENV = %ENV;
if ($ENV{TEST_NGINX_ASAN}) {
    chomp(my $asan = `gcc -print-file-name=libasan.so`);
    $ENV{LD_PRELOAD} = $asan;
    $ENV{ASAN_OPTIONS} = "log_path=$dir/run/asan:detect_leaks=0";
}

chdir $dir or die;
is(system('/usr/sbin/nginx', '-p', "$dir/", '-c', "$dir/conf/nginx.conf",
          '-e', "$dir/run/error.log"), 0, 'nginx starts on conf/nginx.conf');

my $http = HTTP::Tiny->new(timeout => 10);
my $base = "http://127.0.0.1:$port";
wait_for_port();

# the demo partner's accounts are those credentials.json lists
my $res = $http->get("$base/v1/accounts",
                     { headers => { 'X-API-Key' => $creds->{api_key} } });
is($res->{status}, 200, 'GET /v1/accounts with the demo API key')
    or diag($res->{content});
my $accounts = eval { decode_json($res->{content})->{accounts} } || [];
is_deeply([ map { [ @$_{qw(number name bank_code)}, $_->{balance}{value},
                    $_->{balance}{currency} ] } @$accounts ],
          [ map { [ @$_{qw(number name bank_code)}, $_->{balance}{value},
                    $_->{balance}{currency} ] } @{ $creds->{accounts} } ],
          'the accounts and balances of credentials.json');
like($res->{headers}{'x-request-id'}, qr/^[0-9a-f-]{36}$/, 'a request id');

# the other sandbox partner sees its own account only
$res = $http->get("$base/v1/accounts", { headers =>
    { 'X-API-Key' => 'ob_sandbox_key_other_9d27c4e1a0b6f358' } });
is($res->{status}, 200, 'the other partner');
is_deeply([ map { $_->{number} } @{ decode_json($res->{content})->{accounts} } ],
          [ '6222020000000101' ], 'sees only its own account');

# no key, and an unknown path
$res = $http->get("$base/v1/accounts");
is($res->{status}, 401, 'no API key: 401');
is(decode_json($res->{content})->{code}, 'invalid_token', 'invalid_token');

$res = $http->get("$base/nothing/here");
is($res->{status}, 404, 'unknown path: 404');
is($res->{headers}{'content-type'}, 'application/problem+json',
   'as a problem');

# the operators' status
$res = $http->get("$base/openbank/status");
is($res->{status}, 200, 'status');
is_deeply([ map { $_->{name} } @{ decode_json($res->{content})->{partners} } ],
          [ 'demo', 'other' ], 'lists the partners');

# the access log says who called and what came of it
stop();
my $log = slurp("$dir/run/access.log");
like($log, qr{"GET /v1/accounts HTTP/1.1" 200 partner=demo product=accounts result=ok},
     'access log: partner, product, result');
like($log, qr{"GET /v1/accounts HTTP/1.1" 401 partner=- product=accounts result=invalid_token},
     'access log of a refusal');

my $errors = slurp("$dir/run/error.log");
unlike($errors, qr/\[(alert|emerg|crit)\]|exited on signal/,
       'no alert, crash or emergency in the error log');
my @asan = glob("$dir/run/asan.*");
ok(!@asan, 'AddressSanitizer is silent') or diag(slurp($asan[0]));

done_testing();


sub wait_for_port {
    for (1 .. 100) {
        my $r = $http->get("$base/openbank/status");
        return if $r->{status} != 599;
        select(undef, undef, undef, 0.1);
    }
    diag(slurp("$dir/run/error.log"));
    BAIL_OUT('nginx does not answer');
}

sub stop {
    my $pid = slurp("$dir/run/nginx.pid");
    chomp $pid;
    kill 'QUIT', $pid;
    for (1 .. 100) {
        return unless kill 0, $pid;
        select(undef, undef, undef, 0.1);
    }
    kill 'KILL', $pid;
}

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return '';
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
}

# never leave nginx behind, whatever failed above
END { local $?; stop() if -s "$dir/run/nginx.pid" }
