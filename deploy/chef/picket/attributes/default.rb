# Everything the agent config needs; keys come from an encrypted data bag (see recipe).
# The package: a tarball from `npm pack`, fetched and checked against its SHA-256
# (`sha256sum picket-0.1.0.tgz`). The recipe refuses to run without the checksum.
default['picket']['version'] = '0.1.0'
default['picket']['package_url'] = 'https://artifacts.example.invalid/picket-0.1.0.tgz'
default['picket']['package_sha256'] = nil
# Node.js from NodeSource's apt repository, the same LTS major as the container image.
default['picket']['node_major'] = 24
default['picket']['mesh_id'] = 'prod'
default['picket']['data_dir'] = '/var/lib/picket'
default['picket']['identity_key'] = '/etc/picket/node.key'
default['picket']['listen'] = ['/ip4/0.0.0.0/tcp/7946']
default['picket']['bootstrap'] = []
default['picket']['sync_interval'] = '30s'
default['picket']['backend'] = 'nft'
default['picket']['failsafe_ssh_from'] = ['10.0.0.0/8']
default['picket']['metrics'] = '127.0.0.1:9464'
default['picket']['pagerduty_url'] = 'https://events.pagerduty.com/v2/enqueue'
default['picket']['log_level'] = 'info'
default['picket']['data_bag'] = 'picket'
