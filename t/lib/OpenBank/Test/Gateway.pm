package OpenBank::Test::Gateway;

# Another nginx of the same test file, beside the one of the blocks: its
# own servroot (<servroot>/gw-N), port and error log, from sections like a
# block's, for the tests where gateways share state (cluster mode).  Made
# by OpenBank::Test's start_gateway; see its POD.

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path remove_tree);
use Scalar::Util ();
use Test::More ();

use OpenBank::Test::Client qw(http_exchange);
use OpenBank::Test::Match qw(substitute_vars);
use OpenBank::Test::Nginx ();

my $OWNER_PID = $$;
my @All;        # every gateway of the test file, stopped at the end
my $Count = 0;

sub _in ($self, $code) {
    return OpenBank::Test::Nginx::with_instance($self->{inst}, $code);
}

# The sections with $TEST_NGINX_* substituted as this gateway sees them
# ($TEST_NGINX_SERVER_PORT its port, $TEST_NGINX_SERVROOT its servroot).
sub _conf ($self, $sections) {
    return $self->_in(sub {
        my $s = substitute_vars($sections, OpenBank::Test::Nginx::vars());
        return (OpenBank::Test::Nginx::conf_text($s), $s);
    });
}

sub start ($class, $sections = {}) {
    my $n = ++$Count;
    my $root = OpenBank::Test::Nginx::servroot() . "/gw-$n";
    remove_tree($root);
    make_path(map { "$root/$_" } qw(conf logs html tmp));
    my $self = bless {
        n => $n,
        inst => { servroot => $root,
                  port => OpenBank::Test::Nginx::pick_port() },
        owner => $$,
    }, $class;
    push @All, $self;
    Scalar::Util::weaken($All[-1]);
    $self->_start($sections);
    return $self;
}

sub _start ($self, $sections) {
    $self->{sections} = $sections;
    my ($conf, $s) = $self->_conf($sections);
    my $err = $self->_in(sub { OpenBank::Test::Nginx::start($conf, $s) });
    croak "start_gateway $self->{n}: $err" if defined $err;
    return $self;
}

sub port ($self)     { $self->{inst}{port} }
sub servroot ($self) { $self->{inst}{servroot} }
sub pid ($self)      { $self->_in(\&OpenBank::Test::Nginx::nginx_pid) }
sub worker_pids ($self) {
    my @pids = $self->_in(\&OpenBank::Test::Nginx::worker_pids);
    return @pids;
}
sub alive ($self)    { $self->_in(\&OpenBank::Test::Nginx::alive) }

sub error_log_offset ($self) {
    return $self->_in(\&OpenBank::Test::Nginx::error_log_offset);
}

sub error_log_since ($self, $offset = 0) {
    return $self->_in(sub { OpenBank::Test::Nginx::error_log_since($offset) });
}

# The same sections again (or new ones): a stop, then a start.
sub restart ($self, $sections = undef) {
    $self->stop;
    return $self->_start($sections // $self->{sections});
}

# nginx -s reload with these sections (default: the same): true once the
# new workers serve; false if nginx refused them (the reason in list
# context, else a diag).
sub reload ($self, $sections = undef) {
    $sections //= $self->{sections};
    my ($conf, $s) = $self->_conf($sections);
    my $err = $self->_in(sub { OpenBank::Test::Nginx::reload($conf, $s) });
    $self->{sections} = $sections unless defined $err;
    return wantarray ? (1, undef) : 1 unless defined $err;
    return (0, $err) if wantarray;
    Test::More::diag("gateway $self->{n} reload: $err");
    return 0;
}

# Graceful stop; an ASan or valgrind report of this gateway fails a test.
sub stop ($self) {
    my @reports = $self->_in(sub {
        OpenBank::Test::Nginx::stop();
        return OpenBank::Test::Nginx::memory_reports();
    });
    for my $r (@reports) {
        Test::More::fail("gateway $self->{n}: no memory report");
        Test::More::diag($r);
    }
    return 1;
}

# SIGKILL of the master and its workers
sub kill ($self) {
    $self->_in(\&OpenBank::Test::Nginx::kill_all);
    return 1;
}

sub request ($self, $method, $path, $headers = undef, $body = undef,
             $opts = {}) {
    return http_exchange(
        port    => $self->port,
        method  => $method,
        path    => $path,
        headers => $headers,
        body    => $body,
        version => $opts->{version},
        host    => $opts->{host},
        timeout => $opts->{timeout}
                   // 10 * OpenBank::Test::Nginx::slow_factor(),
    );
}

sub DESTROY ($self) {
    return unless $$ == ($self->{owner} // 0);
    local ($?, $@);
    $self->_in(\&OpenBank::Test::Nginx::stop) if $self->{inst}{running};
}

END {
    if ($$ == $OWNER_PID) {
        local $?;
        for my $gw (grep { defined } @All) {
            $gw->_in(\&OpenBank::Test::Nginx::stop) if $gw->{inst}{running};
        }
    }
}

1;
