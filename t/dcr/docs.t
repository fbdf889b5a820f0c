# The examples of docs/tokens.md's "Dynamic client registration" run as
# they are written (from the project root, with the test's port) against
# the real conf/nginx.conf: the curl ones register a client with a
# statement of the demo directory, read it and delete it; the Python one
# (fenced "python dcr", apart from t/token-demo.t's) registers, gets a
# token with private_key_jwt and introspects it.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Demo;
use IPC::Run ();
use JSON::PP;

my $root = project_root();
my $demo = OpenBank::Demo->new('dcr-docs', log_level => 'info');
my $port = $demo->port;

ok(eval { $demo->start }, 'nginx starts on conf/nginx.conf')
    or BAIL_OUT("nginx does not answer: $@");

my $doc = OpenBank::Gateway::slurp("$root/docs/tokens.md");
my ($section) = $doc =~ /^## Dynamic client registration\n(.*?)^## /ms;
ok($section, 'docs/tokens.md has the section');
my @sh = $section =~ /```sh\n(.*?)```/sg;
my @py = $section =~ /```python dcr\n(.*?)```/sg;
is(scalar @sh, 2, 'two curl examples');
is(scalar @py, 1, 'a Python example');

chdir $root or die;
local $ENV{PATH} = "/usr/bin:$ENV{PATH}";
local $ENV{OB_BASE_URL} = $demo->base;

# the curl examples, one shell: register, then read and delete
my $sh = join "\n", @sh;
$sh =~ s/127\.0\.0\.1:8080/127.0.0.1:$port/g;
my ($out, $err) = ('', '');
IPC::Run::run(['bash', '-ec', $sh], \undef, \$out, \$err);
is($?, 0, 'the curl examples run') or diag $err;
my @json = eval { JSON::PP->new->incr_parse($out =~ s/\n204\n\z//r) };
is(scalar @json, 2, 'two answers') or diag $out;
like($json[0]{client_id} // '', qr/^dcr-[0-9a-f]{16}$/, 'registered');
ok($json[0]{registration_access_token}, 'with its registration access token');
is($json[0]{scope}, 'accounts payments', 'of the scopes asked');
is($json[1]{client_id}, $json[0]{client_id}, 'then read');
like($out, qr/\n204\n\z/, 'and deleted: 204');

# the Python example
($out, $err) = ('', '');
my $ok = IPC::Run::run(['/usr/bin/python3', '-c', $py[0]], \undef, \$out,
                       \$err);
ok($ok, 'the Python example runs') or diag "$out$err";
is($out, "True True\n", 'its client gets a token, active at introspection');

my $log = $demo->file('run/error.log');
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no [alert]');

$demo->stop;
done_testing();
