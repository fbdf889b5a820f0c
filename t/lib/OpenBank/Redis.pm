package OpenBank::Redis;

# Real redis-server processes for the cluster tests: one Redis, or a Redis
# Cluster of masters and replicas, on free loopback ports, each in its own
# directory under the test's servroot, and killed when the test ends
# however it ends.  The POD at the end is the reference.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use IO::Handle;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

our $ROOT = abs_path(dirname(__FILE__) . '/../../..');
our $SERVER = $ENV{TEST_REDIS_SERVER} || '/usr/bin/redis-server';
our $CLI = $ENV{TEST_REDIS_CLI} || '/usr/bin/redis-cli';

my %Pids;           # pid => the process that started it
my $Guard;          # this process's guardian: its pipe and pid


# ---------------------------------------------------------------------
# where, and which ports

# the servroot of the test file, as OpenBank::Test names it
sub servroot {
    if (defined &OpenBank::Test::Nginx::servroot) {
        return OpenBank::Test::Nginx::servroot();
    }
    my $abs = abs_path($0) // $0;
    my $rel = $abs =~ m{^\Q$ROOT\E/t/(.+)$} ? $1 : basename($abs);
    $rel =~ s/\.t$//;
    $rel =~ s{[^\w.-]+}{-}g;
    return "$ROOT/t/servroot-$rel";
}

sub _port_free {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => $port, Proto => 'tcp',
                                  Listen => 1, ReuseAddr => 0)
        or return 0;
    close $s;
    return 1;
}

# Ports below the kernel's ephemeral range (32768+) and apart from those
# nginx tests pick (20000-31999): data ports in 12000-15999, each with its
# cluster bus port (cluster-port) in 16000-19999.
my %Taken;

sub _pick {
    my ($from, $n) = @_;
    for (1 .. 1000) {
        my $port = $from + int rand $n;
        next if $Taken{$port};
        next unless _port_free($port);
        $Taken{$port} = 1;
        return $port;
    }
    die "OpenBank::Redis: no free port in $from-" . ($from + $n - 1) . "\n";
}

sub _pick_port { _pick(12000, 4000) }
sub _pick_bus_port { _pick(16000, 4000) }


# ---------------------------------------------------------------------
# the guardian: a child that kills every server when this process dies,
# even by SIGKILL (its pipe then reads end of file)

sub _guard {
    my ($what, $pid) = @_;
    unless ($Guard && $Guard->{owner} == $$) {
        pipe(my $r, my $w) or die "pipe: $!";
        my $g = fork // die "fork: $!";
        if ($g == 0) {
            close $w;
            $SIG{$_} = 'IGNORE' for qw(INT TERM HUP PIPE);
            POSIX::setsid();
            my %alive;
            while (my $line = <$r>) {
                if ($line =~ /^\+(\d+)$/) { $alive{$1} = 1 }
                elsif ($line =~ /^-(\d+)$/) { delete $alive{$1} }
            }
            CORE::kill 'CONT', keys %alive;
            CORE::kill 'KILL', keys %alive;
            POSIX::_exit(0);
        }
        close $r;
        $w->autoflush(1);
        $Guard = { fh => $w, pid => $g, owner => $$ };
    }
    print { $Guard->{fh} } "$what$pid\n";
}


# ---------------------------------------------------------------------
# a minimal RESP client, for the harness's own calls

sub _encode {
    my @a = @_;
    return join '', '*' . @a . "\r\n",
                    map { '$' . length($_) . "\r\n$_\r\n" } @a;
}

sub _read_reply {
    my ($s) = @_;
    my $line = <$s>;
    die "OpenBank::Redis: connection closed\n" unless defined $line;
    $line =~ s/\r\n\z//;
    my ($t, $v) = (substr($line, 0, 1), substr($line, 1));
    return $v if $t eq '+';
    return \"$v" if $t eq '-';
    return 0 + $v if $t eq ':';
    if ($t eq '$') {
        return undef if $v < 0;
        my $buf = '';
        while (length $buf < $v + 2) {
            my $n = read $s, $buf, $v + 2 - length $buf, length $buf;
            die "OpenBank::Redis: connection closed\n" unless $n;
        }
        return substr $buf, 0, $v;
    }
    if ($t eq '*') {
        return undef if $v < 0;
        return [map { _read_reply($s) } 1 .. $v];
    }
    die "OpenBank::Redis: bad reply '$line'\n";
}

# (reply, or undef and the error); an error reply is a ref to its text
sub _call {
    my ($self, $port, @cmd) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 2)
        or return (undef, "connect $port: $!");
    $s->autoflush(1);
    my $reply = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 5;
        if (defined $self->{password}) {
            print $s _encode('AUTH', $self->{password});
            my $r = _read_reply($s);
            die "AUTH: $$r\n" if ref $r eq 'SCALAR';
        }
        if ($self->{readonly}) {
            print $s _encode('READONLY');
            my $r = _read_reply($s);
            die "READONLY: $$r\n" if ref $r eq 'SCALAR';
        }
        print $s _encode(@cmd);
        my $r = _read_reply($s);
        alarm 0;
        $r;
    };
    alarm 0;
    close $s;
    return (undef, "$port @cmd[0 .. ($#cmd < 1 ? $#cmd : 1)]: $@") if $@;
    return ($reply);
}


# ---------------------------------------------------------------------
# servers

# OpenBank::Redis->start(cluster => 0|1, masters => 3, replicas => 1,
#                        persist => 0|1, password => 'pw',
#                        node_timeout => 1000, config => [lines])
sub start {
    my ($class, %o) = @_;
    my $self = bless {
        cluster      => $o{cluster} ? 1 : 0,
        masters      => $o{masters} // 3,
        replicas     => $o{replicas} // 1,
        persist      => $o{persist} ? 1 : 0,
        password     => $o{password},
        node_timeout => $o{node_timeout} // 1000,
        config       => $o{config} // [],
        root         => $o{dir} // servroot(),
        ports        => [],
        pid          => {},
        owner        => $$,
    }, $class;

    my $n = $self->{cluster}
            ? $self->{masters} * (1 + $self->{replicas}) : 1;
    for (1 .. $n) {
        my $port = _pick_port();
        push @{ $self->{ports} }, $port;
        $self->{bus}{$port} = _pick_bus_port() if $self->{cluster};
        my $dir = $self->dir($port);
        remove_tree($dir);
        make_path($dir);
        $self->_write_conf($port);
        $self->_spawn($port);
    }
    $self->_wait_up($_) for $self->ports;

    if ($self->{cluster}) {
        $self->_create_cluster;
        $self->wait_cluster_ok;
    }
    return $self;
}

sub ports { @{ $_[0]{ports} } }
sub port { $_[0]{ports}[0] }
sub dir { "$_[0]{root}/redis-$_[1]" }
sub is_cluster { $_[0]{cluster} }
sub password { $_[0]{password} }
sub pid { $_[0]{pid}{$_[1] // $_[0]->port} }

sub _write_conf {
    my ($self, $port) = @_;
    my $dir = $self->dir($port);
    my @c = ("port $port", 'bind 127.0.0.1', 'protected-mode no',
             "dir $dir", 'daemonize no', "logfile $dir/redis.log",
             'loglevel notice', 'maxmemory-policy noeviction');
    if ($self->{persist}) {
        push @c, 'appendonly yes', 'appendfsync always', 'save ""';
    } else {
        push @c, 'appendonly no', 'save ""';
    }
    if (defined $self->{password}) {
        push @c, "requirepass $self->{password}",
                 "masterauth $self->{password}";
    }
    if ($self->{cluster}) {
        push @c, 'cluster-enabled yes', "cluster-config-file $dir/nodes.conf",
                 "cluster-port $self->{bus}{$port}",
                 "cluster-node-timeout $self->{node_timeout}",
                 # a replica may always take over, however long since it
                 # heard from its master (a busy test machine's pauses)
                 'cluster-replica-validity-factor 0',
                 'cluster-require-full-coverage yes';
    }
    push @c, @{ $self->{config} };
    open my $fh, '>', "$dir/redis.conf" or die "$dir/redis.conf: $!";
    print $fh map { "$_\n" } @c;
    close $fh;
}

sub _spawn {
    my ($self, $port) = @_;
    my $dir = $self->dir($port);
    STDOUT->flush;
    STDERR->flush;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/stdout.log";
        open STDERR, '>&', \*STDOUT;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE);
        {
            no warnings 'exec';
            exec { $SERVER } $SERVER, "$dir/redis.conf";
        }
        POSIX::_exit(127);
    }
    $self->{pid}{$port} = $pid;
    $Pids{$pid} = $$;
    _guard('+', $pid);
    return $pid;
}

sub _log_tail {
    my ($self, $port) = @_;
    my $f = $self->dir($port) . '/redis.log';
    open my $fh, '<', $f or return '';
    my @l = <$fh>;
    return join '', grep { defined } @l[-15 .. -1];
}

sub _until {
    my ($timeout, $cond) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $v = $cond->();
        return $v if $v;
        return undef if time >= $deadline;
        sleep 0.05;
    }
}

sub alive {
    my ($self, $port) = @_;
    my $pid = $self->{pid}{$port // $self->port} or return 0;
    return 0 unless $Pids{$pid};
    local $?;
    my $got = waitpid $pid, WNOHANG;
    if ($got == $pid || $got < 0) {
        $self->_forget($pid);
        return 0;
    }
    return 1;
}

sub _forget {
    my ($self, $pid) = @_;
    delete $Pids{$pid};
    _guard('-', $pid) if $Guard && $Guard->{owner} == $$;
}

sub _wait_up {
    my ($self, $port) = @_;
    my $ok = _until(20, sub {
        die "redis-server on $port exited:\n" . $self->_log_tail($port)
            unless $self->alive($port);
        my ($r) = $self->_call($port, 'PING');
        return defined $r && $r eq 'PONG';
    });
    die "redis-server on $port does not answer PING:\n"
        . $self->_log_tail($port) unless $ok;
}

# a command to one server: its reply (an error reply dies)
sub call_at {
    my ($self, $port, @cmd) = @_;
    my ($r, $err) = $self->_call($port, @cmd);
    die "OpenBank::Redis: $err\n" if defined $err;
    die "OpenBank::Redis: $port @cmd: $$r\n" if ref $r eq 'SCALAR';
    return $r;
}

# a command to a replica, for reads (READONLY first on the connection)
sub call_replica {
    my ($self, $port, @cmd) = @_;
    local $self->{readonly} = 1;
    return $self->call_at($port, @cmd);
}

# a command to the server of its key (cluster: the master of the slot of
# the command's first argument after its name), or to the single server
sub call {
    my ($self, @cmd) = @_;
    my $port = $self->{cluster} && @cmd > 1
               ? $self->master_for_key($cmd[1]) : $self->_any_live;
    return $self->call_at($port, @cmd);
}

# redis-cli itself: its output without the last newline
sub cli_at {
    my ($self, $port, @args) = @_;
    local $ENV{REDISCLI_AUTH} = $self->{password}
        if defined $self->{password};
    open my $fh, '-|', $CLI, '-h', '127.0.0.1', '-p', $port, @args
        or die "$CLI: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    $out =~ s/\n\z//;
    return $out;
}

sub cli {
    my ($self, @args) = @_;
    return $self->cli_at($self->_any_live, ($self->{cluster} ? '-c' : ()),
                         @args);
}

sub _any_live {
    my ($self) = @_;
    for my $p ($self->ports) {
        next unless $self->alive($p);
        next if $self->{stopped}{$p};
        return $p;
    }
    die "OpenBank::Redis: no server is running\n";
}

sub _signal {
    my ($self, $sig, @ports) = @_;
    @ports = $self->ports unless @ports;
    for my $p (@ports) {
        my $pid = $self->{pid}{$p} or die "OpenBank::Redis: no server $p\n";
        CORE::kill $sig, $pid if $self->alive($p);
    }
    return @ports;
}

# SIGSTOP: the server holds its connections and answers nothing
sub stop {
    my ($self, @ports) = @_;
    $self->{stopped}{$_} = 1 for $self->_signal('STOP', @ports);
}

sub cont {
    my ($self, @ports) = @_;
    delete $self->{stopped}{$_} for $self->_signal('CONT', @ports);
}

# SIGKILL, and reaped: its port refuses connections when this returns
sub kill {
    my ($self, @ports) = @_;
    @ports = $self->ports unless @ports;
    for my $p (@ports) {
        next unless $self->alive($p);
        my $pid = $self->{pid}{$p};
        CORE::kill 'KILL', $pid;
        waitpid $pid, 0;
        $self->_forget($pid);
        delete $self->{stopped}{$p};
    }
}

# A clean shutdown (SIGTERM), then the same server again on the same port
# and directory (a single Redis comes back empty unless persist => 1; a
# cluster node keeps its identity in nodes.conf and rejoins).
sub restart {
    my ($self, @ports) = @_;
    @ports = $self->ports unless @ports;
    for my $p (@ports) {
        if ($self->alive($p)) {
            my $pid = $self->{pid}{$p};
            CORE::kill 'CONT', $pid;
            CORE::kill 'TERM', $pid;
            unless (_until(10, sub { waitpid($pid, WNOHANG) == $pid })) {
                CORE::kill 'KILL', $pid;
                waitpid $pid, 0;
            }
            $self->_forget($pid);
            delete $self->{stopped}{$p};
        }
        $self->_spawn($p);
    }
    $self->_wait_up($_) for @ports;
    $self->wait_cluster_ok if $self->{cluster};
}

# Starts again servers that were killed, without touching the others.
sub revive {
    my ($self, @ports) = @_;
    @ports = grep { !$self->alive($_) } (@ports ? @ports : $self->ports);
    $self->restart(@ports) if @ports;
}

sub shutdown {
    my ($self) = @_;
    $self->kill;
}

sub DESTROY {
    my ($self) = @_;
    return unless $$ == ($self->{owner} // 0);
    local ($?, $@);
    $self->shutdown;
}

END {
    local $?;
    for my $pid (grep { $Pids{$_} == $$ } keys %Pids) {
        CORE::kill 'CONT', $pid;
        CORE::kill 'KILL', $pid;
        waitpid $pid, 0;
        delete $Pids{$pid};
    }
    if ($Guard && $Guard->{owner} == $$) {
        close $Guard->{fh};
        waitpid $Guard->{pid}, 0;
        undef $Guard;
    }
}


# ---------------------------------------------------------------------
# the cluster

sub _create_cluster {
    my ($self) = @_;
    my @hosts = map { "127.0.0.1:$_" } $self->ports;
    local $ENV{REDISCLI_AUTH} = $self->{password}
        if defined $self->{password};
    my $out = `$CLI --cluster create @hosts --cluster-replicas $self->{replicas} --cluster-yes 2>&1`;
    die "redis-cli --cluster create failed:\n$out" if $?;
}

# CLUSTER NODES as seen by $port (default: a live node): a list of
# { id, port, master (1/0), master_id, fail (1/0), slots => [[a, b], ...] }
sub nodes {
    my ($self, $port) = @_;
    my $text = $self->call_at($port // $self->_any_live, 'CLUSTER', 'NODES');
    my @nodes;
    for my $line (split /\n/, $text) {
        my ($id, $addr, $flags, $master, undef, undef, undef, $link, @slots)
            = split ' ', $line;
        my ($p) = $addr =~ /:(\d+)/;
        my %f = map { $_ => 1 } split /,/, $flags;
        push @nodes, {
            id => $id, port => 0 + $p, master => $f{master} ? 1 : 0,
            master_id => $master eq '-' ? undef : $master,
            fail => ($f{fail} || $f{'fail?'} || $f{noaddr}) ? 1 : 0,
            link => $link,
            slots => [map { /^(\d+)(?:-(\d+))?$/ ? [$1, $2 // $1] : () }
                      @slots],
        };
    }
    return @nodes;
}

sub masters {
    my ($self) = @_;
    my @m = $self->{cluster}
            ? sort { $a <=> $b } map { $_->{port} }
              grep { $_->{master} && !$_->{fail} && @{ $_->{slots} } }
              $self->nodes
            : ($self->port);
    return @m;
}

sub replicas {
    my ($self, $of) = @_;
    return () unless $self->{cluster};
    my @n = $self->nodes;
    my %id = map { $_->{port} => $_->{id} } @n;
    my @r = sort { $a <=> $b } map { $_->{port} }
            grep { !$_->{master} && !$_->{fail}
                   && (!defined $of || ($_->{master_id} // '') eq $id{$of}) }
            @n;
    return @r;
}

# the seeds of the openbank_cluster directive
sub urls {
    my ($self) = @_;
    return map { "redis://127.0.0.1:$_" } $self->masters;
}

sub directive {
    my ($self, %o) = @_;
    my @args = $self->urls;
    push @args, "timeout=$o{timeout}" if $o{timeout};
    push @args, "nodes=$o{nodes}" if $o{nodes};
    push @args, "password=$o{password}" if $o{password};
    return "openbank_cluster @args;";
}

# the password in a file (mode 0600), for the directive's password=
sub password_file {
    my ($self) = @_;
    die "OpenBank::Redis: no password\n" unless defined $self->{password};
    my $f = "$self->{root}/redis.pass";
    open my $fh, '>', $f or die "$f: $!";
    chmod 0600, $f;
    print $fh "$self->{password}\n";
    close $fh;
    return $f;
}

sub _info {
    my ($self, $port, @section) = @_;
    my ($text, $err) = $self->_call($port, 'INFO', @section);
    return {} if defined $err || ref $text;
    return { map { /^(\w+):(.*?)\r?$/ ? ($1, $2) : () } split /\n/, $text };
}

sub _cluster_info {
    my ($self, $port) = @_;
    my ($text, $err) = $self->_call($port, 'CLUSTER', 'INFO');
    return {} if defined $err || ref $text;
    return { map { /^(\w+):(.*?)\r?$/ ? ($1, $2) : () } split /\n/, $text };
}

# Every live node: cluster_state:ok, all 16384 slots ok, knows every
# node, every live replica's link to its master up.
sub wait_cluster_ok {
    my ($self, $timeout) = @_;
    my $why = '';
    my $ok = _until($timeout // 30, sub {
        my @live = grep { $self->alive($_) && !$self->{stopped}{$_} }
                   $self->ports;
        for my $p (@live) {
            my $ci = $self->_cluster_info($p);
            $why = "$p: cluster_state " . ($ci->{cluster_state} // '?')
                   . ', slots_ok ' . ($ci->{cluster_slots_ok} // '?')
                   . ', known ' . ($ci->{cluster_known_nodes} // '?');
            return 0 unless ($ci->{cluster_state} // '') eq 'ok'
                && ($ci->{cluster_slots_ok} // 0) == 16384
                && ($ci->{cluster_known_nodes} // 0) == $self->ports;
            my $ri = $self->_info($p, 'replication');
            $why = "$p: master link " . ($ri->{master_link_status} // '?');
            return 0 if ($ri->{role} // '') eq 'slave'
                && ($ri->{master_link_status} // '') ne 'up';
        }
        my $masters = grep { $_->{master} && !$_->{fail} && @{ $_->{slots} } }
                      $self->nodes($live[0]);
        $why = "$masters masters serve slots";
        return $masters == $self->{masters};
    });
    die "OpenBank::Redis: cluster not ok: $why\n" unless $ok;
    return 1;
}

# CRC16/XMODEM of the key, or of its {hash tag}, modulo 16384
sub slot_of {
    my ($self, $key) = @_;
    if ($key =~ /\{([^}]+)\}/ && index($key, '{') == $-[0]) {
        $key = $1;
    }
    my $crc = 0;
    for my $c (unpack 'C*', $key) {
        $crc ^= $c << 8;
        for (1 .. 8) {
            $crc = $crc & 0x8000 ? (($crc << 1) ^ 0x1021) : ($crc << 1);
            $crc &= 0xffff;
        }
    }
    return $crc % 16384;
}

# the port of the master serving $slot, as a live node sees it
sub master_for_slot {
    my ($self, $slot, $seen_by) = @_;
    return $self->port unless $self->{cluster};
    for my $n ($self->nodes($seen_by)) {
        next unless $n->{master} && !$n->{fail};
        for my $r (@{ $n->{slots} }) {
            return $n->{port} if $slot >= $r->[0] && $slot <= $r->[1];
        }
    }
    return undef;
}

sub master_for_key {
    my ($self, $key) = @_;
    return $self->master_for_slot($self->slot_of($key));
}

# True once every live replica of the master $port has every write the
# master had when asked (its own slave_repl_offset, not the master's view,
# which the replica's ack updates once a second).  A WAIT on a new
# connection proves nothing: it waits for that connection's writes only.
# On a timeout, false, and the reason in $self->{why}.
sub wait_replicated {
    my ($self, $port, $timeout) = @_;
    my $want = $self->_info($port, 'replication')->{master_repl_offset};
    $self->{why} = "$port: no master_repl_offset";
    return 0 unless defined $want;
    return _until($timeout // 10, sub {
        for my $r (grep { $self->alive($_) } $self->replicas($port)) {
            my $ri = $self->_info($r, 'replication');
            $self->{why} = "replica $r: link "
                . ($ri->{master_link_status} // '?') . ' to '
                . ($ri->{master_port} // '?') . ', offset '
                . ($ri->{slave_repl_offset} // '?') . " of $want";
            return 0 unless ($ri->{master_link_status} // '') eq 'up'
                && ($ri->{master_port} // 0) == $port
                && ($ri->{slave_repl_offset} // -1) >= $want;
        }
        return 1;
    }) ? 1 : 0;
}

# Kills a master (default: the master of slot 0) and waits until one of
# its replicas serves its slots and the cluster is ok again; returns the
# new master's port.  manual => 1: CLUSTER FAILOVER on the replica instead,
# no server killed.
sub failover {
    my ($self, $port, %o) = @_;
    die "OpenBank::Redis: failover needs a cluster\n" unless $self->{cluster};
    $port //= $self->master_for_slot(0);
    my ($node) = grep { $_->{port} == $port } $self->nodes;
    die "OpenBank::Redis: $port is not a master\n"
        unless $node && $node->{master} && @{ $node->{slots} };
    my $slot = $node->{slots}[0][0];
    my @rep = $self->replicas($port);
    die "OpenBank::Redis: $port has no replica\n" unless @rep;

    if ($o{manual}) {
        $self->call_at($rep[0], 'CLUSTER', 'FAILOVER');
    } else {
        # what the test wrote is on the replica first: a lost write is
        # Redis's asynchronous replication, not what the test is about
        $self->wait_replicated($port)
            or die "OpenBank::Redis: before the failover of $port: "
                   . "$self->{why}\n";
        $self->kill($port);
    }
    my $new;
    my $ok = _until($o{timeout} // 30, sub {
        for my $p (@rep) {
            next unless $self->alive($p);
            my $m = eval { $self->master_for_slot($slot, $p) } // next;
            if (grep { $_ == $m } @rep) { $new = $m; return 1 }
        }
        return 0;
    });
    die "OpenBank::Redis: no replica of $port took slot $slot\n" unless $ok;
    my $ok2 = _until($o{timeout} // 30, sub {
        for my $p (grep { $self->alive($_) } $self->ports) {
            my $ci = $self->_cluster_info($p);
            return 0 unless ($ci->{cluster_state} // '') eq 'ok';
            my $m = eval { $self->master_for_slot($slot, $p) } // 0;
            return 0 unless $m == $new;
        }
        return 1;
    });
    unless ($ok2) {
        my @seen = map {
            my $p = $_;
            my $ci = eval { $self->_cluster_info($p) } // {};
            my $m = eval { $self->master_for_slot($slot, $p) } // '?';
            "$p: " . ($ci->{cluster_state} // '?') . ", slot $slot on $m"
        } grep { $self->alive($_) } $self->ports;
        die "OpenBank::Redis: cluster not ok after failover of $port "
            . "(slot $slot to $new): " . join('; ', @seen) . "\n";
    }
    return $new;
}

# keys in all masters, and emptying them all
sub dbsize {
    my ($self) = @_;
    my $n = 0;
    $n += $self->call_at($_, 'DBSIZE') for $self->masters;
    return $n;
}

sub flushall {
    my ($self) = @_;
    $self->call_at($_, 'FLUSHALL') for $self->masters;
}

1;

__END__

=head1 NAME

OpenBank::Redis - real redis-server processes for the cluster tests

=head1 SYNOPSIS

    use lib 't/lib';
    use OpenBank::Test;
    use OpenBank::Redis;

    my $redis = OpenBank::Redis->start;                 # one Redis
    my $rc = OpenBank::Redis->start(cluster => 1);      # 3 masters + 3 replicas

    my $http = $rc->directive(timeout => '50ms', nodes => 3) . "\n" . ...;
    $rc->call('SET', 'k', 'v');                         # on the key's master
    $rc->call_at($rc->master_for_key('k'), 'GET', 'k');
    $rc->cli('GET', 'k');                               # redis-cli -c

    $redis->stop;  ...; $redis->cont;                   # SIGSTOP, SIGCONT
    $redis->kill;  $redis->revive;                      # SIGKILL, start again
    my $new = $rc->failover($rc->master_for_key('k'));  # replica promoted

=head1 DESCRIPTION

Each server is Debian's C<redis-server> (or C<$TEST_REDIS_SERVER>) on
127.0.0.1 and a free port, in F<t/servroot-E<lt>fileE<gt>/redis-E<lt>portE<gt>/>
(its F<redis.conf>, F<redis.log>, F<nodes.conf>), run in the foreground as
a child of the test.  The servroot is the one L<OpenBank::Test> uses (when
loaded, it is asked, so it is emptied first), else the same name.  Ports are
taken in 12000-15999 and the cluster bus ports (C<cluster-port>) in
16000-19999, apart from the ports of nginx tests (20000-31999) and from
the kernel's ephemeral ones.  No test depends on a Redis already running.

No persistence unless C<persist =E<gt> 1> (AOF, C<appendfsync always>);
C<maxmemory-policy noeviction>, as C<docs/cluster.md> asks of a real
deployment.

Every server is killed (SIGKILL, after SIGCONT) when its object is
destroyed and in an END block, and a guardian process kills them when the
test process dies without running END (killed by a signal, SIGKILL
included).  Forked children of the test (load generators) never kill them.

=head1 METHODS

=over

=item OpenBank::Redis->start(%options)

Starts the servers and returns when they are ready: PING answered, and for
a cluster (created with C<redis-cli --cluster create ... --cluster-replicas
N --cluster-yes>) C<cluster_state:ok> on every node, 16384 slots ok, every
node known, every replica's link up, every master with slots.  Options:
C<cluster =E<gt> 1>, C<masters =E<gt> 3>, C<replicas =E<gt> 1> (per
master), C<persist =E<gt> 1>, C<password =E<gt> 'pw'> (C<requirepass> and
C<masterauth>), C<node_timeout =E<gt> 1000> (ms, C<cluster-node-timeout>:
the time before a failover), C<config =E<gt> [lines]> (more of
F<redis.conf>), C<dir =E<gt> path> (instead of the servroot).

=item ports, port, masters, replicas($master), urls, directive(%o)

Every server's port; the first; the ports of the masters serving slots now
(the single server when not a cluster); the replicas (of one master);
C<redis://127.0.0.1:PORT> of each master; the line
C<openbank_cluster URL... timeout=.. nodes=.. password=..;> of
C<docs/directives.md> (options C<timeout>, C<nodes>, C<password>).

=item password, password_file

The password, and a file (mode 0600, in the servroot) holding it.

=item call(@command), call_at($port, @command), call_replica($port, @command)

A command through the harness's own RESP client: to the master of the
slot of the command's first argument (cluster) or the single server, to
one server, or to a replica (after C<READONLY>, for reads).  Returns the reply (arrays as array refs); an error reply dies.

=item cli(@args), cli_at($port, @args)

C<redis-cli> itself (with C<-c> on a cluster), its output without the last
newline.

=item stop(@ports), cont(@ports), kill(@ports), restart(@ports), revive(@ports)

SIGSTOP and SIGCONT; SIGKILL (the port refuses connections when it
returns); a clean stop then a start on the same port and directory,
waiting until it is ready (and the cluster ok); a start of those that are
not running.  Without ports: every server.

=item alive($port), pid($port), dir($port)

=item nodes($seen_by)

C<CLUSTER NODES> parsed: hashes with C<id>, C<port>, C<master>,
C<master_id>, C<fail>, C<link>, C<slots> (C<[[from, to], ...]>).

=item slot_of($key), master_for_slot($slot), master_for_key($key)

The key's slot computed here (CRC16/XMODEM of the key or its C<{hash
tag}>, modulo 16384), and the port of the master serving a slot now.

=item failover($master, manual => 1, timeout => 30)

Kills the master (default: the one of slot 0), or with C<manual> runs
C<CLUSTER FAILOVER> on its replica, and returns the port of the replica
that serves its slots once every live node agrees and says
C<cluster_state:ok>.  C<revive> brings the old master back, as a replica.

=item wait_cluster_ok($timeout)

=item dbsize, flushall

Keys in all masters; FLUSHALL on every master.

=back

=cut
