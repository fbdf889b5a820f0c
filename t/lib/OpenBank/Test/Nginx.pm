package OpenBank::Test::Nginx;

# One nginx per test file: its server root, port, generated nginx.conf and
# lifecycle (start, stop, reload, kill, crash and memory-error detection).
# No Test::More assertions here: functions return errors as strings and
# OpenBank::Test decides what fails.
#
# Section names used by conf_text(): main_config, http_config, config,
# workers, no_module, user_files (see OpenBank::Test for the full list).

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Fcntl qw(:flock);
use File::Basename qw(dirname basename);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use Config;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

use OpenBank::Test::Match qw(parse_user_files log_without_debug);

my $ROOT = abs_path(dirname(__FILE__) . '/../../../..');
my $OWNER_PID = $$;
my $MODULES_DIR = '/usr/lib/nginx/modules';

my %File;       # servroot, port: set once per test file by init_file()
my $Running;    # pid (master), conf, sig (see signature), tainted
my %Reported;   # memory-report files (or offsets in them) already reported
my $ModuleNoteShown;


# ---------------------------------------------------------------------
# switches and paths

sub project_root () { $ROOT }
sub binary ()       { $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx' }
sub use_asan ()     { !!$ENV{TEST_NGINX_ASAN} }
sub use_valgrind () { !!$ENV{TEST_NGINX_USE_VALGRIND} }

# Time limits grow under ASan and (much more) under valgrind.
sub slow_factor () { use_valgrind() ? 8 : use_asan() ? 2 : 1 }

sub servroot () { init_file(); $File{servroot} }
sub port ()     { init_file(); $File{port} }
sub error_log_path ()  { servroot() . '/logs/error.log' }
sub access_log_path () { servroot() . '/logs/access.log' }
sub conf_path ()       { servroot() . '/conf/nginx.conf' }
sub pid_path ()        { servroot() . '/logs/nginx.pid' }

sub module_path () {
    return $ENV{TEST_NGINX_MODULE} || "$ROOT/objs/ngx_openbank_module.so";
}

sub flag ($sections, $name) {
    my $v = $sections->{$name};
    return defined $v && ($v eq '' || !!$v);
}

# "t/foo/bar-baz.t" → "<root>/t/servroot-foo-bar-baz"
sub _servroot_for ($script) {
    my $abs = abs_path($script) // $script;
    my $rel = $abs =~ m{^\Q$ROOT\E/t/(.+)$} ? $1 : basename($abs);
    $rel =~ s/\.t$//;
    $rel =~ s{[^\w.-]+}{-}g;
    return "$ROOT/t/servroot-$rel";
}


# ---------------------------------------------------------------------
# per-file setup

sub _port_free ($port) {
    my $sock = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1',
        LocalPort => $port,
        Proto     => 'tcp',
        Listen    => 1,
        ReuseAddr => 0,
    ) or return 0;
    close $sock;
    return 1;
}

# Below the kernel's ephemeral range (32768+), so that no client socket of
# another test takes it between our check and nginx's bind.
sub _pick_port () {
    for (1 .. 500) {
        my $port = 20000 + int rand 12000;
        return $port if _port_free($port);
    }
    die "no free port found in 20000-31999\n";
}

sub _check_tools () {
    if (use_asan()) {
        chomp(my $lib = `gcc -print-file-name=libasan.so 2>/dev/null` // '');
        die "TEST_NGINX_ASAN=1 but 'gcc -print-file-name=libasan.so' finds"
          . " no libasan (got '$lib'); install gcc and libasan\n"
            unless $lib =~ m{/} && -e $lib;
        $File{libasan} = $lib;
    }
    if (use_valgrind()) {
        system('sh', '-c', 'command -v valgrind >/dev/null') == 0
            or die "TEST_NGINX_USE_VALGRIND=1 but valgrind is not installed\n";
    }
    -x binary() or die "nginx binary '" . binary() . "' is not executable\n";
}

# Two runs of the same test file (two people, or prove run twice) would
# share a servroot: the second one waits for the first (bounded).
sub _lock_servroot ($servroot) {
    my $path = "$servroot.lock";
    open my $fh, '>>', $path or die "cannot open $path: $!\n";
    my $noted;
    my $ok = poll_until(600, sub {
        return 1 if flock $fh, LOCK_EX | LOCK_NB;
        print STDERR "# waiting for another run of $0 ($path)\n"
            unless $noted++;
        return 0;
    });
    die "$path still locked after 600s\n" unless $ok;
    return $fh;
}

# Decides servroot and port for this test file and empties the servroot.
# Runs once; every other function calls it.
sub init_file () {
    return if %File;
    %File = (servroot => _servroot_for($0));
    $File{lock} = _lock_servroot($File{servroot});
    _check_tools();
    $File{port} = $ENV{TEST_NGINX_SERVER_PORT} || _pick_port();

    _become_subreaper();
    remove_tree($File{servroot});
    make_path(map { "$File{servroot}/$_" } qw(conf logs html tmp));
    publish_vars();

    for my $sig (qw(INT TERM HUP)) {
        $SIG{$sig} = sub {
            cleanup();
            $SIG{$sig} = 'DEFAULT';
            kill $sig => $$;
        };
    }
    return;
}

# Test-only: a new port after "Address already in use".
sub _repick_port () {
    $File{port} = _pick_port();
    publish_vars();
}

# The $TEST_NGINX_* names substituted in sections.
sub vars () {
    init_file();
    my $root = $File{servroot};
    my %vars = map { $_ => $ENV{$_} } grep { /^TEST_NGINX_\w+$/ } keys %ENV;
    return {
        %vars,
        TEST_NGINX_SERVER_PORT => $File{port},
        TEST_NGINX_SERVROOT    => $root,
        TEST_NGINX_HTML_DIR    => "$root/html",
        TEST_NGINX_CONF_DIR    => "$root/conf",
        TEST_NGINX_ROOT        => $ROOT,
    };
}

# Makes the same names Perl variables of package main, for eval filters.
sub publish_vars () {
    my $vars = vars();
    no strict 'refs';
    ${"main::$_"} = $vars->{$_} for keys %$vars;
    return;
}


# Runs $code with every function of this package acting on another nginx
# of the test file (OpenBank::Test's start_gateway): $inst holds its
# servroot and port, and keeps its running state between calls.
sub with_instance ($inst, $code) {
    init_file();
    my @saved = ($File{servroot}, $File{port}, $Running);
    ($File{servroot}, $File{port}, $Running)
        = ($inst->{servroot}, $inst->{port}, $inst->{running});
    my @r = eval { $code->() };
    my $err = $@;
    $inst->{running} = $Running;
    ($File{servroot}, $File{port}, $Running) = @saved;
    die $err if $err;
    return wantarray ? @r : $r[0];
}

# A free port for another nginx of the test file.
sub pick_port () { return _pick_port() }


# ---------------------------------------------------------------------
# nginx.conf

sub _module_lines ($sections) {
    my @lines = map { "load_module $MODULES_DIR/$_;" }
                qw(ndk_http_module.so ngx_http_lua_module.so);
    return (@lines, '# ngx_openbank_module: not loaded (no_module)')
        if $ENV{TEST_NGINX_NO_MODULE} || flag($sections, 'no_module');

    my $path = module_path();
    if (-e $path) {
        print STDERR "# note: TEST_NGINX_ASAN without TEST_NGINX_MODULE:"
                   . " $path is not the ASan build\n"
            if use_asan() && !$ENV{TEST_NGINX_MODULE} && !$ModuleNoteShown++;
        return (@lines, "load_module $path;");
    }
    die "TEST_NGINX_MODULE=$path does not exist\n" if $ENV{TEST_NGINX_MODULE};
    print STDERR "# note: $path not built; running without the module\n"
        unless $ModuleNoteShown++;
    return (@lines, "# ngx_openbank_module: not loaded ($path missing)");
}

sub _text ($sections, $name) {
    my $v = $sections->{$name};
    return '' unless defined $v;
    $v = join '', @$v if ref $v eq 'ARRAY';
    return $v =~ /\n\z/ || $v eq '' ? $v : "$v\n";
}

sub workers ($sections = {}) {
    my $n = $sections->{workers};
    $n = $ENV{TEST_NGINX_WORKERS} unless defined $n && length $n;
    return (defined $n && $n =~ /^\s*(\d+|auto)\s*$/) ? $1 : 1;
}

# The complete nginx.conf for a block's sections (see OpenBank::Test).
sub conf_text ($s) {
    my $root = servroot();
    my $port = port();
    my $main = _text($s, 'main_config');
    my $http = _text($s, 'http_config');
    # Placeholder comments keep the line numbers of the sections the same
    # whatever the environment (see OpenBank::Test, "LINE NUMBERS").
    my $user = ($> == 0 && $main !~ /^\s*user\s/m) ? "user root;\n"
                                                    : "# user: unchanged\n";
    my $proc = use_valgrind() ? 'daemon off; master_process off;'
                              : 'daemon on; master_process on;';
    my $lua_path = $http =~ /^\s*lua_package_path\s/m
                 ? "    # lua_package_path: set by http_config\n"
                 : qq{    lua_package_path "$ROOT/lua/?.lua;;";\n};
    my $modules = join '', map { "$_\n" } _module_lines($s);
    my $workers = workers($s);
    my $temp = join '', map { "    ${_}_temp_path $root/tmp/$_;\n" }
                        qw(client_body proxy fastcgi uwsgi scgi);

    return $user . $modules . $main . <<"HEAD" . _text($s, 'config') . <<"TAIL";
worker_processes $workers;
$proc
error_log $root/logs/error.log debug;
pid $root/logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log $root/logs/access.log;
$temp    default_type text/plain;
$lua_path${http}    server {
        listen 127.0.0.1:$port;
        server_name localhost;
HEAD
    }
}
TAIL
}

# What decides a restart: the conf and the files nginx may read at start.
sub signature ($conf, $sections) {
    return join "\0", $conf, _text($sections, 'user_files'),
                      _text($sections, 'init'),
                      $ENV{TEST_NGINX_ASAN} // '',
                      $ENV{TEST_NGINX_USE_VALGRIND} // '';
}


# ---------------------------------------------------------------------
# files

sub _write_file ($path, $content) {
    make_path(dirname($path));
    open my $fh, '>', $path or die "cannot write $path: $!\n";
    print {$fh} $content;
    close $fh or die "cannot write $path: $!\n";
}

sub _slurp ($path, $offset = 0) {
    open my $fh, '<', $path or return '';
    seek $fh, $offset, 0 if $offset;
    local $/;
    return scalar(<$fh>) // '';
}

sub write_user_files ($spec) {
    my $root = servroot();
    _write_file("$root/$_->[0]", $_->[1]) for parse_user_files($spec);
}

# Fresh conf/, html/ and tmp/ (files of a previous block must not leak);
# logs/ is kept so that the whole file's history stays readable.
sub reset_dirs () {
    my $root = servroot();
    for my $dir (qw(conf html tmp)) {
        remove_tree("$root/$dir");
        make_path("$root/$dir");
    }
    make_path("$root/logs");
}

sub write_conf ($conf) { _write_file(conf_path(), $conf) }

sub error_log_offset () { -s error_log_path() // 0 }
sub error_log_since ($offset = 0) { _slurp(error_log_path(), $offset) }
sub access_log_size () { -s access_log_path() // 0 }

# The last $n lines since $offset without [debug] lines, for diagnostics.
sub error_log_tail ($offset = 0, $n = 40) {
    my @lines = log_without_debug(error_log_since($offset));
    @lines = @lines[-$n .. -1] if @lines > $n;
    return join "\n", @lines;
}


# ---------------------------------------------------------------------
# processes

sub _env_for_nginx () {
    return () unless use_asan();
    my $log = servroot() . '/logs/asan';
    return (
        LD_PRELOAD   => $File{libasan},
        ASAN_OPTIONS => "log_path=$log:detect_leaks=0:abort_on_error=0"
                      . ":halt_on_error=1:detect_odr_violation=0",
    );
}

sub _valgrind_prefix () {
    return () unless use_valgrind();
    my $supp = "$ROOT/t/lib/valgrind.suppress";
    return ('valgrind', '--error-exitcode=66', '--leak-check=no',
            '--num-callers=30',
            '--log-file=' . servroot() . '/logs/valgrind.%p.log',
            (-f $supp ? "--suppressions=$supp" : ()),
            split(' ', $ENV{TEST_NGINX_VALGRIND_OPTS} // ''));
}

sub _nginx_args (@extra) {
    my $root = servroot();
    return (binary(), @extra, '-p', "$root/", '-c', conf_path(),
            '-e', error_log_path());
}

# fork + exec with stdin from /dev/null and stdout/stderr to $out.
sub _spawn ($cmd, $out, %env) {
    STDOUT->flush;
    STDERR->flush;
    my $pid = fork // die "fork: $!\n";
    return $pid if $pid;

    eval {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $out or die;
        open STDERR, '>&', \*STDOUT or die;
        @ENV{keys %env} = values %env;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE);
        exec { $cmd->[0] } @$cmd;
    };
    POSIX::_exit(127);
}

# Exit status of our child $pid, or undef if it runs longer than $timeout
# (then it is killed).
sub _wait_child ($pid, $timeout) {
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $got = waitpid $pid, WNOHANG;
        return $? if $got == $pid;
        return -1 if $got < 0;
        sleep 0.01;
    }
    kill KILL => $pid;
    waitpid $pid, 0;
    return undef;
}

# Calls $cond every 20 ms until it returns true (returned) or $timeout
# seconds pass (undef).
sub poll_until ($timeout, $cond) {
    my $deadline = time + $timeout;
    while (1) {
        my $v = $cond->();
        return $v if $v;
        return undef if time >= $deadline;
        sleep 0.02;
    }
}

# Alive and not a zombie.  Reaps $pid when it is our child (including an
# nginx master adopted as a subreaper, see _become_subreaper).
sub pid_alive ($pid) {
    return 0 unless $pid;
    local $?;
    my $got = waitpid $pid, WNOHANG;
    return 0 if $got == $pid;
    return 1 if $got == 0;
    return 0 unless kill 0, $pid;
    return _slurp("/proc/$pid/stat") =~ /\)\s+Z\s/ ? 0 : 1;
}

# PR_SET_CHILD_SUBREAPER: the daemonized master (whose parent exits) is
# adopted by this process instead of init, so that it is reaped as soon as
# it exits rather than lingering as a zombie when init is slow to reap.
sub _become_subreaper () {
    my %prctl = (x86_64 => 157, aarch64 => 167, i686 => 172, i386 => 172);
    my ($arch) = $Config{archname} =~ /^([^-]+)/;
    my $nr = $prctl{$arch // ''} // return;
    syscall $nr, 36, 1, 0, 0, 0;
}

sub _read_pid_file () {
    my $pid = _slurp(pid_path());
    return $pid =~ /^\s*(\d+)\s*$/ ? $1 : undef;
}

# Is there a LISTEN socket on 127.0.0.1:$port?  (Silent, unlike a probe
# connection, which nginx would log.)
sub _listening ($port) {
    my $want = sprintf '0100007F:%04X', $port;
    my $tcp = _slurp('/proc/net/tcp');
    return undef unless length $tcp;
    return scalar grep {
        my @f = split ' ';
        @f > 3 && $f[1] eq $want && $f[3] eq '0A';
    } split /\n/, $tcp;
}

sub _accepting ($port) {
    my $l = _listening($port);
    return $l if defined $l;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Timeout => 0.2);
    return $sock ? (close($sock), 1)[1] : 0;
}

sub is_running () { return !!$Running }
sub nginx_pid ()  { return $Running ? $Running->{pid} : undef }
sub running_signature () { return $Running ? $Running->{sig} : undef }
sub taint () { $Running->{tainted} = 1 if $Running }
sub tainted () { return $Running && $Running->{tainted} }

sub alive () {
    return 0 unless $Running;
    return pid_alive($Running->{pid});
}

# Children of the master, from /proc (workers, cache manager/loader).
sub worker_pids () {
    my $master = nginx_pid() or return ();
    my @pids;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my $stat = _slurp("/proc/$pid/stat");
        next unless $stat =~ /\)\s+(\S)\s+(\d+)/;
        push @pids, $pid + 0 if $2 == $master && $1 ne 'Z';
    }
    return sort { $a <=> $b } @pids;
}

# Starts nginx with $conf (already written by the caller's choice of
# sections).  Returns undef on success, else an explanation.
sub _start_with ($conf, $sig) {
    my $root = servroot();
    my $out = "$root/logs/nginx.stdout";
    my $offset = error_log_offset();
    unlink pid_path(), $out;
    write_conf($conf);

    my @cmd = (_valgrind_prefix(), _nginx_args());
    my $timeout = 5 * slow_factor();
    my $pid = _spawn(\@cmd, $out, _env_for_nginx());

    if (use_valgrind()) {
        $Running = {pid => $pid, conf => $conf, sig => $sig};
    } else {
        my $status = _wait_child($pid, $timeout);
        if (!defined $status || $status != 0) {
            return "nginx did not start ("
                 . (defined $status ? 'exit status ' . ($status >> 8)
                                    : "still running after ${timeout}s")
                 . "):\n" . _slurp($out) . error_log_tail($offset);
        }
        my $master = poll_until($timeout, \&_read_pid_file)
            or return "nginx wrote no pid file within ${timeout}s:\n"
                    . error_log_tail($offset);
        $Running = {pid => $master, conf => $conf, sig => $sig};
    }

    my $ready = poll_until($timeout, sub {
        return 'dead' unless alive();
        return _accepting(port()) ? 'up' : 0;
    }) // 'timeout';
    return undef if $ready eq 'up';

    my $why = $ready eq 'dead' ? 'nginx exited during start'
            : "127.0.0.1:" . port() . " not accepting after ${timeout}s";
    stop();
    return "$why:\n" . _slurp($out) . error_log_tail($offset);
}

# Writes the block's files and conf, then starts nginx (stopping any
# previous one).  Retries on another port if ours was taken meanwhile
# (only when the port was not given by TEST_NGINX_SERVER_PORT): $rebuild
# then returns the conf and signature for the new port.
sub start ($conf, $sections, $rebuild = undef) {
    stop();
    reset_dirs();
    write_user_files($sections->{user_files});

    my $sig = signature($conf, $sections);
    for my $attempt (1 .. 3) {
        my $offset = error_log_offset();
        my $err = _start_with($conf, $sig);
        return undef unless defined $err;
        return $err if $ENV{TEST_NGINX_SERVER_PORT} || !$rebuild
                    || $attempt == 3
                    || error_log_since($offset) !~ /Address already in use/;
        _repick_port();
        ($conf, $sig) = $rebuild->();
    }
}

# Graceful stop: QUIT, then KILL after 5 s (more under ASan/valgrind).
sub stop () {
    return unless $Running;
    my $pid = $Running->{pid};
    my @workers = worker_pids();

    if (alive()) {
        kill QUIT => $pid;
        if (!poll_until(5 * slow_factor(), sub { !alive() })) {
            kill KILL => $pid, @workers;
            poll_until(2, sub { !alive() });
        }
    }
    if (my @left = grep { pid_alive($_) } @workers) {
        poll_until(1, sub { !grep { pid_alive($_) } @left })
            or kill KILL => @left;
    }
    $Running = undef;
    unlink pid_path();
    return;
}

# SIGKILL the master and every worker (crash tests).
sub kill_all () {
    return unless $Running;
    my $master = $Running->{pid};
    my @pids = ($master, worker_pids());
    # A daemon master leads its own process group, with every worker in it:
    # killing the group also takes a worker the master forked a moment ago
    # (after a crash), which a list of its children could miss.
    my ($pgrp) = _slurp("/proc/$master/stat") =~ /\)\s+\S\s+\d+\s+(\d+)/;
    kill KILL => -$master if defined $pgrp && $pgrp == $master;
    kill KILL => @pids;
    poll_until(2, sub { !grep { pid_alive($_) } @pids });
    $Running = undef;
    unlink pid_path();
    return;
}

# Rewrites the conf and sends HUP; waits (bounded) until the new workers
# run and the old ones are gone.  Returns undef on success, else why not
# (a refused config keeps the old one running, as nginx does).
sub reload ($conf, $sections) {
    croak "reload_nginx: nginx is not running" unless $Running && alive();
    write_user_files($sections->{user_files});
    write_conf($conf);
    return _restart_for_reload($conf, $sections) if use_valgrind();

    my $offset = error_log_offset();
    my @old = worker_pids();
    my $want = workers($sections);
    $want = 1 if $want eq 'auto' || use_valgrind();
    kill HUP => $Running->{pid};

    my $timeout = 5 * slow_factor();
    my $done = poll_until($timeout, sub {
        my $log = error_log_since($offset);
        return 'refused' if $log =~ /\[(?:emerg|alert)\]/;
        return 0 unless $log =~ /reconfiguring/;
        return 'ok' if use_valgrind();
        my $started = () = $log =~ /start worker process \d+/g;
        return 0 if $started < $want;
        return (grep { pid_alive($_) } @old) ? 0 : 'ok';
    }) // 'timeout';

    if ($done eq 'ok') {
        @$Running{qw(conf sig)} = ($conf, signature($conf, $sections));
        return undef;
    }
    return ($done eq 'refused' ? 'nginx refused the new configuration'
                               : "reload not finished after ${timeout}s")
         . ":\n" . error_log_tail($offset);
}

# nginx -t on the conf file as written.  Returns (exit status or undef on
# timeout, stdout+stderr, error log lines).
sub _nginx_t () {
    my $out = servroot() . '/logs/nginx-t.out';
    unlink $out;
    my $offset = error_log_offset();
    my $pid = _spawn([_nginx_args('-t')], $out, _env_for_nginx());
    my $status = _wait_child($pid, 10 * slow_factor());
    return ($status, _slurp($out), error_log_since($offset));
}

# Under valgrind nginx runs as a single process, where HUP does not really
# work (the new cycle's sockets get no handlers): check the conf with
# nginx -t (a refused conf keeps the old nginx, as a reload would), then
# restart.  The master pid changes.
sub _restart_for_reload ($conf, $sections) {
    my ($status, $out) = _nginx_t();
    if (!defined $status || $status != 0) {
        write_conf($Running->{conf});
        return "nginx refused the new configuration:\n$out";
    }
    stop();
    my $err = _start_with($conf, signature($conf, $sections));
    return defined $err ? "restart (valgrind reload) failed: $err" : undef;
}

# nginx -t on $conf (nginx is stopped first, the conf and files written).
# Returns (exit status or undef on timeout, stdout+stderr, log lines).
sub test_config ($conf, $sections) {
    stop();
    reset_dirs();
    write_user_files($sections->{user_files});
    write_conf($conf);
    return _nginx_t();
}


# ---------------------------------------------------------------------
# memory checkers

sub _asan_reports () {
    my @reports;
    for my $file (sort glob(servroot() . '/logs/asan.*')) {
        my $text = _slurp($file);
        unlink $file;
        push @reports, "AddressSanitizer report $file:\n$text"
            if $text =~ /\S/;
    }
    return @reports;
}

my $VALGRIND_ERROR = qr{
    Invalid\ (?:read|write|free)
  | uninitialised
  | Mismatched\ free
  | ERROR\ SUMMARY:\ [1-9]
  | Source\ and\ destination\ overlap
}x;

sub _valgrind_reports () {
    my @reports;
    for my $file (sort glob(servroot() . '/logs/valgrind.*.log')) {
        my $size = -s $file // 0;
        my $from = $Reported{$file} // 0;
        next if $size <= $from;
        my $text = _slurp($file, $from);
        $Reported{$file} = $size;
        push @reports, "valgrind report $file:\n$text"
            if $text =~ $VALGRIND_ERROR;
    }
    return @reports;
}

# New ASan / valgrind reports since the last call (each reported once).
sub memory_reports () {
    return () unless %File;
    return (use_asan() ? _asan_reports() : (),
            use_valgrind() ? _valgrind_reports() : ());
}

# Stops nginx if this process started it; for END and signal handlers.
# Returns the memory reports that stopping produced.
sub cleanup () {
    return () unless $$ == $OWNER_PID && %File;
    stop();
    return memory_reports();
}

END {
    if ($$ == $OWNER_PID && $Running) {
        local $?;
        my @reports = cleanup();
        print STDERR "# $_\n" for map { split /\n/ } @reports;
    }
}

1;
