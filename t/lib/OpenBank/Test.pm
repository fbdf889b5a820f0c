package OpenBank::Test;

use v5.36;
use strict;
use warnings;

use Carp qw(croak);
use feature ();
use Test::More ();
use Time::HiRes qw(sleep);

use OpenBank::Test::Client qw(http_exchange);
use OpenBank::Test::Match qw(
    substitute_vars parse_request_section body_diff check_headers
    check_json log_patterns log_matches check_log unexpected_alerts
    crashed_workers json_subset_match json_subset_mismatch
);
use OpenBank::Test::Gateway ();
use OpenBank::Test::Nginx ();
use OpenBank::Test::Spec ();

use parent 'Exporter';
our @EXPORT = qw(
    repeat_each run_tests run_blocks
    start_nginx stop_nginx reload_nginx kill_nginx nginx_pid worker_pids
    start_gateway
    http_request http_raw_request
    server_port servroot project_root error_log_offset error_log_since
);
our @EXPORT_OK = qw(json_subset_match json_subset_mismatch);

# Section names a block may use; a misspelt one fails the block.  A test
# file that reads sections of its own can add to it.
our %Sections = map { $_ => 1 } qw(
    main_config http_config config workers no_module user_files init restart
    request raw_request request_body more_headers timeout
    error_code response_body response_body_like response_body_unlike
    response_headers response_headers_like response_json
    error_log no_error_log must_die wait allow_alert
    no_repeat skip_asan skip_valgrind ONLY SKIP LAST
);

my $RepeatEach = 1;

# "use OpenBank::Test" also gives the test file strict, warnings, the
# Perl 5.36 features (signatures, say) and Test::More.
sub import ($class, @args) {
    my $caller = caller;
    strict->import;
    warnings->import;
    feature->import(':5.36');
    eval "package $caller; use Test::More; 1" or die $@;
    $class->export_to_level(1, $class, @args);
}


# ---------------------------------------------------------------------
# small public accessors

sub repeat_each (@n) {
    $RepeatEach = $n[0] if @n;
    return $RepeatEach;
}

sub server_port ()      { OpenBank::Test::Nginx::port() }
sub servroot ()         { OpenBank::Test::Nginx::servroot() }
sub project_root ()     { OpenBank::Test::Nginx::project_root() }
sub nginx_pid ()        { OpenBank::Test::Nginx::nginx_pid() }
sub worker_pids ()      { OpenBank::Test::Nginx::worker_pids() }
sub error_log_offset () { OpenBank::Test::Nginx::error_log_offset() }
sub error_log_since ($offset = 0) {
    return OpenBank::Test::Nginx::error_log_since($offset);
}


# ---------------------------------------------------------------------
# procedural API

sub _flag ($s, $name) { OpenBank::Test::Nginx::flag($s, $name) }

# Conf and signature of already substituted sections.
sub _conf_of ($s) {
    my $conf = OpenBank::Test::Nginx::conf_text($s);
    return ($conf, OpenBank::Test::Nginx::signature($conf, $s));
}

# Substitutes the sections, starts nginx, and keeps $$sref up to date if
# the port had to change.  Returns undef or the error.
sub _start ($raw, $sref) {
    $$sref = substitute_vars($raw, OpenBank::Test::Nginx::vars());
    my ($conf) = _conf_of($$sref);
    return OpenBank::Test::Nginx::start($conf, $$sref, sub {
        $$sref = substitute_vars($raw, OpenBank::Test::Nginx::vars());
        return _conf_of($$sref);
    });
}

# start_nginx({ config => ..., http_config => ..., main_config => ...,
#               workers => 2, user_files => ..., init => ...,
#               no_module => 1 })
sub start_nginx ($sections = {}) {
    OpenBank::Test::Nginx::init_file();
    OpenBank::Test::Spec::eval_in_main($sections->{init}, 'start_nginx init')
        if defined $sections->{init};
    my $err = _start($sections, \my $s);
    croak "start_nginx: $err" if defined $err;
    return 1;
}

# Another nginx of this test file (a second, third gateway sharing state
# with the blocks' one): an OpenBank::Test::Gateway, see the POD.
sub start_gateway ($sections = {}) {
    return OpenBank::Test::Gateway->start($sections);
}

sub stop_nginx () {
    OpenBank::Test::Nginx::stop();
    _memory_check('stop_nginx');
    return 1;
}

sub kill_nginx () {
    OpenBank::Test::Nginx::kill_all();
    return 1;
}

# True once the new workers serve $sections' config; false if nginx
# refused it or did not finish in time.  In scalar context the reason is
# a diag; in list context it is returned: my ($ok, $why) = reload_nginx(...)
sub reload_nginx ($sections = {}) {
    my $s = substitute_vars($sections, OpenBank::Test::Nginx::vars());
    my $err = OpenBank::Test::Nginx::reload(
        OpenBank::Test::Nginx::conf_text($s), $s);
    return wantarray ? (1, undef) : 1 unless defined $err;
    return (0, $err) if wantarray;
    Test::More::diag("reload_nginx: $err");
    return 0;
}

sub _default_timeout () { 10 * OpenBank::Test::Nginx::slow_factor() }

# http_request('POST', '/t', {'X-API-Key' => 'abc'}, '{"a":1}',
#              {timeout => 5, version => 'HTTP/1.0', port => ...})
sub http_request ($method, $path, $headers = undef, $body = undef,
                  $opts = {}) {
    return http_exchange(
        port    => $opts->{port} // server_port(),
        method  => $method,
        path    => $path,
        headers => $headers,
        body    => $body,
        version => $opts->{version},
        host    => $opts->{host},
        timeout => $opts->{timeout} // _default_timeout(),
    );
}

sub http_raw_request ($bytes, $opts = {}) {
    return http_exchange(
        port    => $opts->{port} // server_port(),
        raw     => $bytes,
        timeout => $opts->{timeout} // _default_timeout(),
    );
}


# ---------------------------------------------------------------------
# assertions

sub _emit ($label, @checks) {
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    for my $check (@checks) {
        Test::More::ok($check->{ok}, "$label - $check->{name}")
            or Test::More::diag($check->{diag});
    }
}

sub _fail ($label, $what, $why) {
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::fail("$label - $what");
    Test::More::diag($why);
}

# ASan / valgrind reports: one failing assertion per report, or (when a
# checker is on and $always) one passing assertion.
sub _memory_check ($label, $always = 0) {
    my @reports = OpenBank::Test::Nginx::memory_reports();
    my $checker = OpenBank::Test::Nginx::use_asan() ? 'ASan'
                : OpenBank::Test::Nginx::use_valgrind() ? 'valgrind' : undef;
    return unless $checker;
    _fail($label, "no $checker report", $_) for @reports;
    Test::More::pass("$label - no $checker report") if $always && !@reports;
}


# ---------------------------------------------------------------------
# running one block

sub _request ($s) {
    my $timeout = $s->{timeout} // _default_timeout();
    die "timeout '$timeout' is not a number of seconds\n"
        unless $timeout =~ /^\d+(?:\.\d+)?$/;

    if (defined(my $raw = $s->{raw_request})) {
        $raw = join '', @$raw if ref $raw eq 'ARRAY';
        return http_raw_request($raw, {timeout => $timeout});
    }
    return undef unless defined $s->{request};
    die "request: one request per block (got a list)\n" if ref $s->{request};

    my ($method, $path, $version, $body) =
        parse_request_section($s->{request});
    $body = $s->{request_body} if defined $s->{request_body};
    my $res = http_request($method, $path, $s->{more_headers}, $body,
                           {timeout => $timeout, version => $version});
    return $res;
}

sub _body_excerpt ($res) {
    my $body = $res->body // '(none)';
    return length $body > 600 ? substr($body, 0, 600) . '...' : $body;
}

sub _check_response ($s, $res, $label) {
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (!defined $res->status) {
        _fail($label, 'response',
              'no response: ' . ($res->error // '?')
              . "\nrequest:\n" . ($res->request // ''));
        return;
    }
    _fail($label, 'complete response', $res->error) if defined $res->error;

    my $want = $s->{error_code} // 200;
    Test::More::is($res->status, $want, "$label - status code")
        or Test::More::diag("body: " . _body_excerpt($res));

    _emit($label, check_headers($res->headers, $s->{response_headers}))
        if defined $s->{response_headers};
    _emit($label, check_headers($res->headers, $s->{response_headers_like},
                                1))
        if defined $s->{response_headers_like};

    if (defined(my $body = $s->{response_body})) {
        my $diff = body_diff($res->body, $body);
        Test::More::ok(!defined $diff, "$label - response body")
            or Test::More::diag($diff);
    }
    for my $like (qw(response_body_like response_body_unlike)) {
        next unless defined(my $pat = $s->{$like});
        $pat =~ s/\n\z// unless ref $pat;
        my $re = ref $pat eq 'Regexp' ? $pat : qr/$pat/s;
        my $hit = ($res->body // '') =~ $re;
        my $ok = $like eq 'response_body_like' ? $hit : !$hit;
        Test::More::ok($ok, "$label - $like")
            or Test::More::diag("pattern: $re\nbody: " . _body_excerpt($res));
    }
    _emit($label, check_json($res->body, $s->{response_json}))
        if defined $s->{response_json};
}

sub _check_logs ($s, $offset, $label) {
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @want = log_patterns($s->{error_log});
    my @not  = log_patterns($s->{no_error_log});

    OpenBank::Test::Nginx::poll_until(
        1 * OpenBank::Test::Nginx::slow_factor(), sub {
            my $log = error_log_since($offset);
            return !grep { !log_matches($log, $_) } @want;
        }) if @want;

    my $log = error_log_since($offset);
    _emit($label, check_log($log, \@want), check_log($log, \@not, 1));
}

# No [alert]/[crit]/[emerg], no worker crash, master alive, no memory
# error report.
sub _check_health ($s, $offset, $label) {
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $log = error_log_since($offset);
    my @excuses = _flag($s, 'allow_alert') ? (qr/./)
                : log_patterns($s->{error_log});

    my @alerts = unexpected_alerts($log, \@excuses);
    Test::More::ok(!@alerts, "$label - no [alert], [crit] or [emerg]")
        or Test::More::diag(join "\n", @alerts);

    # a crashed worker taints nginx (restart next block) even if excused
    OpenBank::Test::Nginx::taint() if crashed_workers($log);
    my @crashes = crashed_workers($log, \@excuses);
    my $alive = OpenBank::Test::Nginx::alive();
    Test::More::ok($alive && !@crashes,
                   "$label - nginx alive, no worker crashed")
        or Test::More::diag(join "\n",
               ($alive ? () : 'the nginx master process is gone'),
               @crashes,
               OpenBank::Test::Nginx::error_log_tail($offset, 20));
    OpenBank::Test::Nginx::stop() unless $alive;

    _memory_check($label);
}

# Starts or restarts nginx when needed.  Returns the error log offset
# where the block's own lines begin, or undef (after failing) when nginx
# did not start.
sub _ensure_nginx ($raw, $sref, $label) {
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my (undef, $sig) = _conf_of($$sref);
    my $running = OpenBank::Test::Nginx::running_signature();
    my $restart = !defined $running || $running ne $sig
               || !OpenBank::Test::Nginx::alive()
               || OpenBank::Test::Nginx::tainted()
               || _flag($$sref, 'restart');
    my $offset = error_log_offset();
    return $offset unless $restart;

    my $err = _start($raw, $sref);
    return $offset unless defined $err;
    _fail($label, 'nginx starts', $err);
    _memory_check($label);
    return undef;
}

sub _run_must_die ($s, $label) {
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($status, $out, $log) = OpenBank::Test::Nginx::test_config(
        OpenBank::Test::Nginx::conf_text($s), $s);
    Test::More::ok(defined $status && $status != 0,
                   "$label - nginx -t refuses the config")
        or Test::More::diag('nginx -t '
               . (defined $status ? 'accepted it' : 'timed out') . ":\n$out");

    my $text = "$out\n$log";
    my $label_t = 'nginx -t output';
    _emit($label,
          check_log($text, [log_patterns($s->{error_log})], 0, $label_t),
          check_log($text, [log_patterns($s->{no_error_log})], 1, $label_t));
    _memory_check($label);
}

sub _run_repetition ($raw, $label) {
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $s = substitute_vars($raw, OpenBank::Test::Nginx::vars());
    return _run_must_die($s, $label) if _flag($s, 'must_die');

    OpenBank::Test::Spec::eval_in_main($s->{init}, "$label init")
        if defined $s->{init};

    my $offset = _ensure_nginx($raw, \$s, $label) // return;
    my $access = OpenBank::Test::Nginx::access_log_size();
    my $res = _request($s);
    _check_response($s, $res, $label) if $res;

    sleep $s->{wait} if $s->{wait};
    # the log phase may run just after the client got the response
    OpenBank::Test::Nginx::poll_until(0.2, sub {
        OpenBank::Test::Nginx::access_log_size() > $access
    }) if $res;

    _check_logs($s, $offset, $label);
    _check_health($s, $offset, $label);
}

sub _skip_reason ($s) {
    return 'skip_asan' if _flag($s, 'skip_asan')
                          && OpenBank::Test::Nginx::use_asan();
    return 'skip_valgrind' if _flag($s, 'skip_valgrind')
                              && OpenBank::Test::Nginx::use_valgrind();
    return undef;
}

sub _run_block ($block) {
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $name = $block->name;
    my $raw = eval {
        OpenBank::Test::Spec->filter_block($block);
        OpenBank::Test::Spec->block_sections($block);
    };
    return _fail($name, 'sections', $@) unless $raw;

    if (my @unknown = sort grep { !$Sections{$_} } keys %$raw) {
        return _fail($name, 'sections',
                     "unknown section(s): @unknown (see OpenBank::Test)");
    }
    if (my $why = _skip_reason($raw)) {
        return Test::More->builder->skip("$name: $why");
    }

    my $reps = (_flag($raw, 'no_repeat') || _flag($raw, 'must_die'))
             ? 1 : $RepeatEach;
    for my $rep (1 .. $reps) {
        my $label = "$name ($rep/$reps)";
        eval { _run_repetition($raw, $label); 1 }
            or _fail($label, 'runs', $@);
    }
}


# ---------------------------------------------------------------------
# the data section

# Runs every block of __DATA__ (without finishing the test plan).
sub run_blocks () {
    OpenBank::Test::Nginx::init_file();
    _run_block($_) for OpenBank::Test::Spec->data_blocks;
    return;
}

# Runs every block, stops nginx, and calls done_testing.
sub run_tests () {
    run_blocks();
    stop_nginx();
    Test::More::done_testing();
}

1;

__END__

=head1 NAME

OpenBank::Test - data-driven tests of ngx_openbank_module in the spirit of
openresty's Test::Nginx::Socket

=head1 SYNOPSIS

    use lib 't/lib';
    use OpenBank::Test;

    repeat_each(2);
    run_tests();

    __DATA__

    === TEST 1: an API key reaches the bank
    --- http_config
    openbank_zone openbank 1m;
    --- config
    location = /t { return 200 "hello\n"; }
    --- request
    GET /t
    --- more_headers
    X-API-Key: abc
    --- error_code: 200
    --- response_body
    hello
    --- no_error_log
    [error]

C<use OpenBank::Test> also turns on C<strict>, C<warnings> and the Perl 5.36
features (signatures, C<say>), and imports Test::More.  See
F<docs/testing.md> for a longer guide.

=head1 HOW A BLOCK RUNS

Each block runs C<repeat_each> times (once with C<no_repeat> or
C<must_die>).  Its sections go through Test::Base's filters, then every
C<$TEST_NGINX_*> name below is substituted in every section.  The block's
nginx.conf is generated; nginx is (re)started only when that conf, the
C<user_files> or the C<init> code differ from the running nginx's, when
the block says C<restart>, or when the previous nginx died or lost a
worker.  The request is sent, the response checked, and then the error
log lines this block produced (from just before the start, or before the
request when nginx was already running) are checked.  Every repetition
also asserts: no C<[alert]>, C<[crit]> or C<[emerg]> line, nginx and its
workers alive, and no ASan/valgrind report (when enabled).

The generated conf (F<t/servroot-NAME/conf/nginx.conf>, NAME being the
test file's path under F<t/> without C<.t>, slashes made dashes):

    user root;                       # only when running as root and
                                     # main_config has no "user"
    load_module .../ndk_http_module.so;
    load_module .../ngx_http_lua_module.so;
    load_module <module>;            # see TEST_NGINX_MODULE
    <main_config>
    worker_processes <workers>;
    daemon on; master_process on;    # off/off under valgrind
    error_log <servroot>/logs/error.log debug;
    pid <servroot>/logs/nginx.pid;
    events { worker_connections 1024; }
    http {
        access_log <servroot>/logs/access.log;
        client_body_temp_path <servroot>/tmp/client_body;
        (proxy, fastcgi, uwsgi, scgi temp paths alike)
        default_type text/plain;
        lua_package_path "<root>/lua/?.lua;;";  # unless http_config sets it
    <http_config>
        server {
            listen 127.0.0.1:<port>;
            server_name localhost;
    <config>
        }
    }

=head1 LINE NUMBERS

Lines that do not apply (C<user>, the module, C<lua_package_path>) become
comments, so with C<M> lines of C<main_config> and C<H> of C<http_config>,
line C<k> of C<main_config> is nginx.conf line C<4 + k>, of C<http_config>
C<18 + M + k>, and of C<config> C<21 + M + H + k>, whatever the environment.

=head1 SECTIONS

Configuration:

=over

=item main_config, http_config, config

Text put in the main, http and server contexts (see above).

=item workers

C<worker_processes> (default C<$TEST_NGINX_WORKERS>, else 1).

=item no_module

Do not load ngx_openbank_module (harness self-tests).

=item user_files

Files written under the servroot before nginx starts:

    --- user_files
    >>> conf/partners/acme.jwks.json
    {"keys": []}
    >>> html/x.txt
    hello

With C<eval>: an arrayref of C<[path, content]> or a hashref.  conf/, html/
and tmp/ are emptied at every (re)start.

=item init

Perl code run (in package main) before nginx is started, every
repetition.  Harness functions and the test file's subs are callable.

=item restart

Always restart nginx before this block.

=back

Request:

=over

=item request

C<METHOD /path> (C<HTTP/1.1> unless a third word is given), optionally
followed by lines that form the body (without their final newline).
The client sends only C<Host: localhost>, C<Connection: close>, and
C<Content-Length> when there is a body, besides C<more_headers> (which
replace them if they name the same header).

=item request_body

The body, exactly (use the C<chomp> filter to drop the final newline).

=item more_headers

One C<Name: value> per line.

=item raw_request

Bytes sent as-is (usually with C<eval>), for malformed requests.

=item timeout

Seconds to wait for the response (default 10).

=back

Expectations:

=over

=item error_code

The status (default 200 when a request is sent).

=item response_body, response_body_like, response_body_unlike

Exact body (a diff on mismatch); regex matched with C</s> (one final
newline of the section is dropped; C<eval> may give a qr//).

=item response_headers

C<Name: value> (exact value, name case-insensitive; several values of one
header are joined with ", ", or list the name on several lines to compare
value by value), C<Name:> (present and empty), C<!Name> (absent).

=item response_headers_like

C<Name: regex> per line.

=item response_json

The body is JSON and contains these keys with these values (objects:
subset; arrays: same length, element by element; numbers, strings,
booleans and null must have the same JSON type).  A string value starting
with C<~> is a regex, e.g. C<{"request_id": "~^[0-9a-f-]{36}$"}>.  With
C<eval>, a Perl structure (qr// allowed as values).

=item error_log, no_error_log

One substring per line that must (must not) appear among the block's
error log lines.  With C<eval>: a string, a qr//, or an arrayref of both.
C<error_log> waits up to 1 s for its lines.  Lines matched by C<error_log>
are exempt from the automatic C<[alert]>/C<[crit]>/C<[emerg]> check.

=item must_die

The config must be refused: nginx is stopped, C<nginx -t> runs on the
block's config, must exit non-zero, and C<error_log>/C<no_error_log> are
matched against its output and error log lines, e.g.

    --- error_log eval
    qr/invalid rate "10r\/x" in \Q$TEST_NGINX_CONF_DIR\E\/nginx.conf:\d+/

=item wait

Seconds to sleep after the response, before the log checks.

=item allow_alert

Do not fail on C<[alert]>, C<[crit]>, C<[emerg]> or worker crashes.

=item no_repeat, skip_asan, skip_valgrind

Run once; skip under TEST_NGINX_ASAN; skip under TEST_NGINX_USE_VALGRIND.

=item ONLY, SKIP, LAST

Test::Base's: run only this block; skip it; stop after it.

=back

Filters (C<--- name filter ...>) are Test::Base's (C<chomp>, C<eval>,
C<lines>, C<base64_decode>, ...).  C<eval> runs in package main and dies
loudly on errors; C<$TEST_NGINX_*> are Perl variables there too.

=head1 VARIABLES

Substituted (exactly these names) in every section:
C<$TEST_NGINX_SERVER_PORT>, C<$TEST_NGINX_SERVROOT>, C<$TEST_NGINX_HTML_DIR>,
C<$TEST_NGINX_CONF_DIR>, C<$TEST_NGINX_ROOT> (project root) and every
C<TEST_NGINX_*> environment variable.

=head1 ENVIRONMENT

=over

=item TEST_NGINX_MODULE

Path of the module (default F<objs/ngx_openbank_module.so>; when that
default is missing the module is not loaded, with a note).

=item TEST_NGINX_NO_MODULE

Never load the module.

=item TEST_NGINX_WORKERS

Default C<worker_processes>.

=item TEST_NGINX_SERVER_PORT

Use this port instead of a free one picked in 20000-31999.

=item TEST_NGINX_BINARY

nginx binary (default F</usr/sbin/nginx>).

=item TEST_NGINX_ASAN

Run nginx (and nginx -t) with LD_PRELOAD of gcc's libasan and
C<ASAN_OPTIONS=log_path=E<lt>servrootE<gt>/logs/asan:...>; a report fails the
block.  Set TEST_NGINX_MODULE to the ASan build.

=item TEST_NGINX_USE_VALGRIND

Run nginx under valgrind, single process (C<master_process off>), with
F<t/lib/valgrind.suppress> if present; reports fail the block.
TEST_NGINX_VALGRIND_OPTS adds options.

=back

=head1 FUNCTIONS

    repeat_each($n)      run_tests()         run_blocks()
    start_nginx(\%sections)   stop_nginx()   reload_nginx(\%sections)
    kill_nginx()         nginx_pid()         worker_pids()
    start_gateway(\%sections)
    http_request($method, $path, \%headers|\@pairs, $body, \%opts)
    http_raw_request($bytes, \%opts)
    server_port()  servroot()  project_root()
    error_log_offset()  error_log_since($offset)

C<start_nginx> dies if nginx does not start; C<reload_nginx> returns false
if nginx refuses the new config (with a diag; in list context it returns
C<($ok, $why)> instead).  C<http_request> returns an
object with C<status>, C<headers> (lowercased name => [values]),
C<header($name)>, C<body>, C<raw> and C<error>.  C<run_tests> ends with
C<done_testing>; use C<run_blocks> to add code after the blocks.

=head1 MORE GATEWAYS

    my $gw2 = start_gateway({ http_config => $http, config => $config });
    my $res = $gw2->request('GET', '/t', ['X-API-Key' => 'k']);
    $gw2->reload({ ... });  $gw2->restart;  $gw2->kill;  $gw2->stop;

C<start_gateway> starts another nginx beside the blocks' one, from
sections like a block's (C<main_config>, C<http_config>, C<config>,
C<workers>, C<user_files>, C<no_module>), the same generated nginx.conf,
in F<E<lt>servrootE<gt>/gw-N/> on a port of its own, and dies if it does
not start.  In its sections C<$TEST_NGINX_SERVER_PORT> and
C<$TEST_NGINX_SERVROOT> are its own (other C<$TEST_NGINX_*> names as
usual), so that each gateway keeps its own local state.  The object
(L<OpenBank::Test::Gateway>) has C<port>, C<servroot>, C<pid>,
C<worker_pids>, C<alive>, C<request> (as C<http_request>, to its port),
C<reload(\%sections)> (default: the same; false when refused, as
C<reload_nginx>), C<restart(\%sections)>, C<stop> (an ASan or valgrind
report fails a test), C<kill> (SIGKILL of the master and workers),
C<error_log_offset> and C<error_log_since($offset)>.  Every gateway is
stopped when its object goes away and at the end of the test file.  The
tests of cluster mode use it with L<OpenBank::Redis>.

=cut
