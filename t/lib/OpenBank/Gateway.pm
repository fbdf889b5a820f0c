package OpenBank::Gateway;

# Procedural helpers for the tests that need the whole gateway
# (conf/nginx.conf with the sandbox bank behind it) and need to stop, kill
# and restart it: a copy of the project as `make run` sees it under
# t/servroot-<name>, started daemonised on a free loopback port.
#
#   my $gw = OpenBank::Gateway->new('idem', settle_delay => 0.2);
#   $gw->start;
#   my $res = $gw->post('/v1/payments', $body, 'Idempotency-Key' => 'k1');
#   $gw->kill9; $gw->start;  # crash and restart, state kept
#   $gw->stop; $gw->check_log;
#
# Several gateways in front of one bank, sharing a Redis (cluster mode):
#
#   my $redis = OpenBank::Redis->start(cluster => 1);
#   my $a = OpenBank::Gateway->new('a', http_config => $redis->directive);
#   my $b = OpenBank::Gateway->new('b', http_config => $redis->directive,
#                                  bank => $a);
#
# http_config => TEXT goes into the http block (after openbank_state); bank =>
# GATEWAY sends this gateway's bank_core calls to that gateway's sandbox
# bank (its socket), so that the payments of all of them land in one
# ledger.
#
# Under TEST_NGINX_ASAN=1 (make test-asan) nginx runs with libasan
# preloaded and check_log fails on any AddressSanitizer report.

use strict;
use warnings;
use Cwd qw(abs_path getcwd);
use File::Basename qw(dirname);
use HTTP::Tiny;
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP qw(decode_json encode_json);
use Test::More;
use Time::HiRes qw(sleep);

our $ROOT = abs_path(dirname(__FILE__) . '/../../..');

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1) or die;
    return $s->sockport;
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($f, $s) = @_;
    open my $fh, '>', $f or die "$f: $!";
    print $fh $s;
    close $fh;
}

sub creds {
    return decode_json(slurp("$ROOT/conf/demo/credentials.json"));
}

# new(NAME, settle_delay => S, debug_delay => S, extra_bank => CONF,
#     http_config => CONF, bank => GATEWAY,
#     edit => sub { my $conf = shift; ...; $conf })
sub new {
    my ($class, $name, %o) = @_;
    my $dir = "$ROOT/t/servroot-gw-$name";
    my $self = bless { name => $name, dir => $dir, port => free_port(),
                       %o }, $class;

    system('rm', '-rf', $dir) == 0 or die;
    system('mkdir', '-p', "$dir/run/tmp", "$dir/run/bank", "$dir/objs") == 0
        or die;
    system('cp', '-r', "$ROOT/conf", "$ROOT/lua", "$dir/") == 0 or die;
    my $module = $ENV{TEST_NGINX_MODULE}
                 || "$ROOT/objs/ngx_openbank_module.so";
    symlink($module, "$dir/objs/ngx_openbank_module.so") or die;
    system('chown', 'nobody', "$dir/run/bank") if $> == 0;

    $self->configure;
    $self->{http} = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
    $self->{key} = creds()->{api_key};

    return $self;
}

# rewrites the copy of conf/nginx.conf from the project's
sub configure {
    my ($self) = @_;
    my $dir = $self->{dir};
    my $port = $self->{port};
    my $conf = slurp("$ROOT/conf/nginx.conf");

    $conf =~ s/listen  127\.0\.0\.1:8080;/listen  127.0.0.1:$port;/ or die;
    $conf =~ s/(set \$openbank_bank_events  127\.0\.0\.1:)8080;/$1$port;/;
    $conf =~ s/daemon            off;/daemon            on;/ or die;
    $conf =~ s/error_log         stderr notice;/error_log run\/error.log info;/
        or die;

    # the tests make thousands of calls in seconds: a plan that lets them
    # (the limits themselves are t/limits/'s tests)
    $conf =~ s/rate   50r\/s burst=100;/rate   100000r\/s burst=100000;/;
    $conf =~ s/(quota  \w+ +)\d+(\/(?:day|month);)/${1}100000000$2/g;

    my $delay = $self->{settle_delay} // 0.2;
    $conf =~ s/set \$openbank_bank_settle_delay  2;/set \$openbank_bank_settle_delay  $delay;/
        or die;

    my $extra = '';
    if ($self->{debug_delay}) {
        $extra .= "        set \$openbank_bank_debug_delay $self->{debug_delay};\n";
    }

    # a look into the bank's ledger for the tests, never in the real conf
    $extra .= <<'CONF';
        location = /_test/ledger {
            content_by_lua_block {
                local db = require "openbank.db"
                local schema = require "openbank.schema"
                local ledger = require "openbank.ledger"
                local conn = assert(db.open(ngx.var.openbank_bank_db,
                                            schema.migrate))
                local ok, err = ledger.verify(conn)
                local sum = conn:first("SELECT SUM(balance) AS s, "
                    .. "SUM(held) AS h FROM accounts")
                local esc = conn:first("SELECT balance FROM accounts "
                    .. "WHERE number = 'INT-ESCROW-CNY'")
                local owed = conn:first("SELECT COALESCE(SUM(amount - "
                    .. "released - refunded), 0) AS s FROM escrows WHERE "
                    .. "status IN ('funded', 'partially_released', "
                    .. "'disputed')")
                local acc = conn:first("SELECT COALESCE(SUM(amount), 0) "
                    .. "AS s FROM payments WHERE status = 'accepted'")
                local pays = conn:first("SELECT COUNT(*) AS n FROM payments")
                ngx.say(require("cjson").encode({
                    verify = ok and "ok" or err, sum = sum.s, held = sum.h,
                    escrow_holding = esc.balance, escrow_owed = owed.s,
                    accepted = acc.s, payments = pays.n }))
            }
        }
        location = /_test/payments {
            content_by_lua_block {
                local db = require "openbank.db"
                local schema = require "openbank.schema"
                local conn = assert(db.open(ngx.var.openbank_bank_db,
                                            schema.migrate))
                local r = conn:first("SELECT COUNT(*) AS n, "
                    .. "group_concat(status) AS s FROM payments "
                    .. "WHERE reference = ?", ngx.var.arg_reference)
                ngx.say(r.n, " ", r.s or "")
            }
        }
CONF
    $conf =~ s/(set \$openbank_bank_db  run\/bank\/bank\.sqlite3;\n)/$1$extra/
        or die;

    if (defined $self->{http_config}) {
        my $http = join '', map { "    $_\n" } split /\n/,
                                $self->{http_config};
        $conf =~ s/(\n    openbank_state     run\/state;\n)/$1$http/ or die;
    }
    if (my $bank = $self->{bank}) {
        my $sock = $bank->dir . '/run/bank.sock';
        $conf =~ s/(upstream bank_core \{\n        server  )unix:run\/bank\.sock;/$1unix:$sock;/
            or die;
    }

    $conf = $self->{edit}->($conf) if $self->{edit};

    spew("$dir/conf/nginx.conf", $conf);
}

sub dir { $_[0]{dir} }
sub port { $_[0]{port} }
sub base { "http://127.0.0.1:$_[0]{port}" }

sub start {
    my ($self) = @_;
    my $dir = $self->{dir};

    local %ENV = %ENV;
    if ($ENV{TEST_NGINX_ASAN}) {
        chomp(my $asan = `gcc -print-file-name=libasan.so`);
        $ENV{LD_PRELOAD} = $asan;
        $ENV{ASAN_OPTIONS} = "log_path=$dir/run/asan:detect_leaks=0";
    }

    # paths in conf/nginx.conf (the bank's socket) are relative to it
    my $cwd = getcwd();
    chdir $dir or die;
    my $rc = system('/usr/sbin/nginx', '-p', "$dir/", '-c',
                    "$dir/conf/nginx.conf", '-e', "$dir/run/error.log");
    chdir $cwd;
    die "nginx did not start: " . slurp("$dir/run/error.log") if $rc;

    for (1 .. 200) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}");
        return 1 if $s;
        sleep 0.05;
    }

    die "nginx does not listen on $self->{port}";
}

# nginx -t on the copy: (exit status, output)
sub test_config {
    my ($self) = @_;
    my $dir = $self->{dir};
    local %ENV = %ENV;
    if ($ENV{TEST_NGINX_ASAN}) {
        chomp(my $asan = `gcc -print-file-name=libasan.so`);
        $ENV{LD_PRELOAD} = $asan;
        $ENV{ASAN_OPTIONS} = "log_path=$dir/run/asan:detect_leaks=0";
    }
    my $cwd = getcwd();
    chdir $dir or die;
    my $out = `/usr/sbin/nginx -t -p $dir/ -c $dir/conf/nginx.conf 2>&1`;
    my $rc = $?;
    chdir $cwd;
    return ($rc, $out);
}

# nginx -s reload on the copy; waits until a new worker generation serves
sub reload {
    my ($self) = @_;
    my $dir = $self->{dir};
    my @old = grep { $_ != ($self->pids)[0] } $self->pids;
    local %ENV = %ENV;
    if ($ENV{TEST_NGINX_ASAN}) {
        chomp(my $asan = `gcc -print-file-name=libasan.so`);
        $ENV{LD_PRELOAD} = $asan;
        $ENV{ASAN_OPTIONS} = "log_path=$dir/run/asan:detect_leaks=0";
    }
    my $cwd = getcwd();
    chdir $dir or die;
    system('/usr/sbin/nginx', '-p', "$dir/", '-c', "$dir/conf/nginx.conf",
           '-s', 'reload') == 0 or die "reload failed";
    chdir $cwd;
    for (1 .. 200) {
        last unless grep { kill 0, $_ } @old;
        sleep 0.05;
    }
}

sub pids {
    my ($self) = @_;
    my $master = slurp("$self->{dir}/run/nginx.pid");
    chomp $master;
    return () unless $master;
    my @kids = split /\s+/, `pgrep -P $master`;
    return ($master, grep { length } @kids);
}

sub stop {
    my ($self) = @_;
    my ($master) = $self->pids;
    return unless $master;
    kill 'QUIT', $master;
    for (1 .. 200) {
        last unless kill 0, $master;
        sleep 0.05;
    }
    kill 'KILL', $master if kill 0, $master;
    unlink "$self->{dir}/run/nginx.pid";
    sleep 0.1;
}

# the master and every worker, at once: a crash of the whole gateway
sub kill9 {
    my ($self) = @_;
    my @p = $self->pids;
    kill 'KILL', @p if @p;
    for (1 .. 200) {
        last unless grep { kill 0, $_ } @p;
        sleep 0.05;
    }
    unlink "$self->{dir}/run/nginx.pid";
    # the listening socket of the bank is a file
    unlink "$self->{dir}/run/bank.sock";
}

sub request {
    my ($self, $method, $path, $body, %h) = @_;
    my %headers = ('X-API-Key' => $self->{key}, %h);
    delete $headers{'X-API-Key'} unless defined $headers{'X-API-Key'};
    my %opt = (headers => \%headers);
    if (defined $body) {
        $opt{content} = ref $body ? encode_json($body) : $body;
        $headers{'Content-Type'} //= 'application/json';
    }
    my $res = $self->{http}->request($method, $self->base . $path, \%opt);
    $res->{json} = eval { decode_json($res->{content}) };
    return $res;
}

sub post { my $s = shift; $s->request('POST', @_) }
sub get { my ($s, $p, %h) = @_; $s->request('GET', $p, undef, %h) }

# a request straight to the bank's socket, as the gateway would send it
sub bank_post {
    my ($self, $path, $body, %h) = @_;
    my $s = IO::Socket::UNIX->new(Peer => "$self->{dir}/run/bank.sock")
        or die "bank socket: $!";
    my $json = ref $body ? encode_json($body) : $body;
    my $req = "POST $path HTTP/1.1\r\nHost: bank\r\nConnection: close\r\n"
              . "Content-Type: application/json\r\n"
              . "Content-Length: " . length($json) . "\r\n";
    $req .= "$_: $h{$_}\r\n" for sort keys %h;
    print $s "$req\r\n$json";
    local $/;
    my $raw = <$s>;
    my ($head, $content) = split /\r\n\r\n/, $raw, 2;
    my ($status) = $head =~ /^HTTP\/1\.1 (\d+)/;
    return { status => $status, head => $head, content => $content,
             json => eval { decode_json($content) } };
}

sub ledger {
    my ($self) = @_;
    my $s = IO::Socket::UNIX->new(Peer => "$self->{dir}/run/bank.sock")
        or die "bank socket: $!";
    print $s "GET $_[1] HTTP/1.0\r\nHost: bank\r\n\r\n" if $_[1];
    print $s "GET /_test/ledger HTTP/1.0\r\nHost: bank\r\n\r\n" unless $_[1];
    local $/;
    my $raw = <$s>;
    my (undef, $content) = split /\r\n\r\n/, $raw, 2;
    return $_[1] ? $content : decode_json($content);
}

sub payments_with_reference {
    my ($self, $ref) = @_;
    my $n = $self->ledger("/_test/payments?reference=$ref");
    my ($count, $statuses) = split / /, $n;
    chomp $statuses;
    return wantarray ? ($count, $statuses) : $count;
}

sub error_log { slurp("$_[0]{dir}/run/error.log") }

# no [alert], [emerg], [crit] or [error] beyond those the test expects (regexes),
# no AddressSanitizer report
sub check_log {
    my ($self, @expected) = @_;
    my @bad;
    for my $line (split /\n/, $self->error_log) {
        next unless $line =~ /\[(alert|emerg|crit|error)\]/;
        next if grep { $line =~ $_ } @expected;
        push @bad, $line;
    }
    ok(!@bad, "$self->{name}: no unexpected [alert], [crit], [emerg] or [error]")
        or diag(join "\n", @bad);

    my @asan = glob("$self->{dir}/run/asan*");
    ok(!@asan, "$self->{name}: no AddressSanitizer report")
        or diag(slurp($asan[0]));
}

sub DESTROY {
    my ($self) = @_;
    $self->stop if -e "$self->{dir}/run/nginx.pid";
}

1;
