package OpenBank::Demo;

# What `make run` serves, for t/demo.t and t/token-demo.t: a copy of the
# project (conf/, lua/, objs/, run/) under t/servroot-gw-NAME whose
# conf/nginx.conf is the real one with only what `make run` and a test
# must change: the port (listen and issuer, as the Makefile's sed), daemon
# mode, and the error log in run/error.log.  Unlike OpenBank::Gateway's
# copy, its plan's limits and the bank's settlement delay are the real
# ones and it has no /_test locations.  Starting, stopping and calling it
# are OpenBank::Gateway's (start, stop, request, get, post, error_log);
# a request carries no API key unless it gives one.
#
#   my $demo = OpenBank::Demo->new('demo');
#   ok($demo->listens, 'conf/nginx.conf listens on 127.0.0.1:8080');
#   ok(eval { $demo->start }, 'nginx starts') or diag $@;
#   my $res = $demo->get('/v1/accounts',
#                        'X-API-Key' => $demo->creds->{api_key});
#   $demo->stop;
#
# Options: log_level => 'info' (notice), tls => 1 (conf/mtls-server.conf's
# 8443 moved to a free port, tls_port), chown => ['run'] (more of run/ the
# workers own, besides run/bank, when the test runs as root).

use strict;
use warnings;
use parent -norequire, 'OpenBank::Gateway';
use OpenBank::Gateway ();

*slurp = \&OpenBank::Gateway::slurp;
*spew = \&OpenBank::Gateway::spew;

sub new {
    my ($class, $name, %o) = @_;
    my $self = $class->SUPER::new($name, %o);
    my $dir = $self->{dir};

    if ($> == 0) {
        system('chown', 'nobody', "$dir/$_") for @{ $self->{chown} || [] };
    }

    $self->{key} = undef;
    return $self;
}

# rewrites the copy of conf/nginx.conf (and conf/mtls-server.conf)
sub configure {
    my ($self) = @_;
    my $dir = $self->{dir};
    my $port = $self->{port};
    my $conf = slurp("$dir/conf/nginx.conf");

    $self->{listens} = $conf =~ /listen  127\.0\.0\.1:8080;/;
    $conf =~ s/127\.0\.0\.1:8080;/127.0.0.1:$port;/g;
    $conf =~ s/daemon            off;/daemon            on;/ or die;
    my $log = 'error_log run/error.log ' . ($self->{log_level} || 'notice');
    $conf =~ s/error_log         stderr notice;/$log;/ or die;
    spew("$dir/conf/nginx.conf", $conf);

    if ($self->{tls}) {
        $self->{tls_port} = OpenBank::Gateway::free_port();
        my $mtls = slurp("$dir/conf/mtls-server.conf");
        $mtls =~ s/127\.0\.0\.1:8443/127.0.0.1:$self->{tls_port}/ or die;
        spew("$dir/conf/mtls-server.conf", $mtls);
    }
}

sub listens { $_[0]{listens} }
sub tls_port { $_[0]{tls_port} }

# a file of the copy: $demo->file('run/access.log')
sub file { slurp("$_[0]{dir}/$_[1]") }

# stopping it at the end does not change the test's exit status
sub DESTROY {
    local $?;
    $_[0]->SUPER::DESTROY;
}

1;
