# `make` installs the module under a running nginx (a test left running, or
# `make run` in another terminal) by a rename: the running processes keep
# the build they mapped.  Written over in place, the file's new bytes show
# through the old mapping, and every process nginx starts afterwards (a
# cache manager respawned after a SIGKILL, a new worker) runs garbage: the
# cache manager then died on SIGSEGV and was respawned for ever.  Here the
# "new build" is a file of zeros, installed by the Makefile's own recipe.

use strict;
use warnings;
use lib 't/lib';
use Cwd qw(abs_path);
use OpenBank::Gateway;
use Test::More;
use Time::HiRes qw(sleep);

my $root = $OpenBank::Gateway::ROOT;
my $source = abs_path($ENV{TEST_NGINX_MODULE}
                      || "$root/objs/ngx_openbank_module.so");
my $dir = "$root/t/servroot-gw-module-install";
my $module = "$dir/module/ngx_openbank_module.so";

local $ENV{TEST_NGINX_MODULE} = $module;
my $gw = OpenBank::Gateway->new('module-install');

system('mkdir', '-p', "$dir/module") == 0 or die;
system('cp', $source, $module) == 0 or die;
utime 0, 0, $module;     # older than the sources: make installs it again

# a build directory whose build step does nothing and whose "build" is
# zeros of the module's size
my $build = "$dir/build";
system('mkdir', '-p', "$build/nginx/objs") == 0 or die;
OpenBank::Gateway::spew("$build/.deps", '');
OpenBank::Gateway::spew("$build/nginx/objs/Makefile", "modules:\n\t\@true\n");
OpenBank::Gateway::spew("$build/nginx/objs/ngx_http_openbank_module.so",
                        "\0" x -s $module);

$gw->start;
is($gw->get('/v1/accounts')->{status}, 200, 'the gateway answers');
my $inode = (stat $module)[1];

my $out = `make -s -C $root BUILD=$build MODULE=$module $module 2>&1`;
is($?, 0, 'make installs the module') or diag($out);
isnt((stat $module)[1], $inode, 'by a rename: a new file');
is(-s $module, -s "$build/nginx/objs/ngx_http_openbank_module.so",
   'the new build');
ok(!glob("$module.tmp.*"), 'no temporary file left');

# nginx starts processes from the build it loaded
my (undef, @kids) = $gw->pids;
my ($cm) = grep { OpenBank::Gateway::slurp("/proc/$_/cmdline")
                  =~ /cache manager/ } @kids;
ok($cm, 'a cache manager');
kill 'KILL', $cm;
sleep 2;
for my $i (1 .. 4) {
    is($gw->get('/v1/accounts')->{status}, 200, "then the gateway answers ($i)");
}
my @crashes = $gw->error_log =~ /(exited on signal (?!9\b)\d+)/g;
is(scalar @crashes, 0, 'no process crashed')
    or diag(scalar(@crashes) . " crashes: $crashes[0]");
my @cms = $gw->error_log =~ /start cache manager process/g;
is(scalar @cms, 2, 'one cache manager started again, once');

$gw->stop;
done_testing();
