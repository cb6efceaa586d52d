# Installs picket under /opt/picket, enforces before the network comes up
# (picket-enforce.service) and runs the agent under the hardened unit (picket.service).
require 'json'

# Fixed prefix: the units in files/default (identical to deploy/systemd) name
# /opt/picket/bin/picket. npm's own global prefix differs by distribution and Node source
# (/usr/lib, /usr, /usr/local), so nothing here relies on it.
prefix = '/opt/picket'
picket = "#{prefix}/bin/picket"
version = node['picket']['version']

sha256 = node['picket']['package_sha256']
raise "picket: set node['picket']['package_sha256'] (sha256sum of picket-#{version}.tgz)" if sha256.nil? || sha256.empty?

# Node.js from NodeSource: Debian 12's nodejs is 18.x, below the package's engines (>=20.19),
# and Debian 13's 20.x is past upstream end of life. NodeSource ships the current LTS (with
# npm) for Debian and Ubuntu; the pin keeps the distribution's older nodejs from winning.
package %w(ca-certificates curl gnupg nftables iproute2)

apt_repository 'nodesource' do
  uri "https://deb.nodesource.com/node_#{node['picket']['node_major']}.x"
  distribution 'nodistro'
  components ['main']
  key 'https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key'
end

apt_preference 'nodejs' do
  pin 'origin deb.nodesource.com'
  pin_priority '600'
end

package 'nodejs'

directory '/var/cache/picket' do
  mode '0755'
end

tarball = "/var/cache/picket/picket-#{version}.tgz"
remote_file tarball do
  source node['picket']['package_url']
  checksum sha256
  mode '0644'
  notifies :run, 'execute[install picket]', :immediately
end

execute 'install picket' do
  command "npm install -g --prefix #{prefix} #{tarball}"
  # Also when the tarball is cached but the install is missing or another version.
  not_if "#{picket} --version | grep -qx '#{version}'"
  notifies :restart, 'service[picket]', :delayed
end

directory '/etc/picket' do
  mode '0750'
end

# Node identity, trusted root and PagerDuty key come from an encrypted data bag item named
# after the node: { "node_key": "...", "root_json": "...", "pagerduty_key": "..." }.
# Without node_key, the node's identity is created here once (`picket keygen --node`) and its
# PeerId printed in the Chef log for enrolment; it never leaves the node.
secrets = data_bag_item(node['picket']['data_bag'], node.name)
identity_key = node['picket']['identity_key']

if secrets['node_key']
  file identity_key do
    content secrets['node_key']
    mode '0600'
    sensitive true
    notifies :restart, 'service[picket]', :delayed
  end
else
  execute 'create node identity' do
    command "#{picket} keygen --node --out #{identity_key}"
    creates identity_key
    live_stream true
  end
end

file '/etc/picket/root.json' do
  content secrets['root_json']
  mode '0644'
  notifies :restart, 'service[picket]', :delayed
end

file '/etc/picket/pd.key' do
  content secrets['pagerduty_key']
  mode '0600'
  sensitive true
end

# The agent reloads on SIGHUP, except for fields it cannot change while running: a change
# to one of these restarts it. They are written to a file of their own so that its change,
# and only its change, notifies :restart; every other template change notifies :reload.
restart_fields = {
  'meshId' => node['picket']['mesh_id'],
  'listen' => node['picket']['listen'],
  'dataDir' => node['picket']['data_dir'],
  'identityKey' => identity_key,
}
file '/etc/picket/.restart-fields.json' do
  content JSON.pretty_generate(restart_fields) + "\n"
  mode '0600'
  notifies :restart, 'service[picket]', :delayed
end

template '/etc/picket/agent.yaml' do
  source 'agent.yaml.erb'
  mode '0640'
  variables(
    mesh_id: node['picket']['mesh_id'],
    data_dir: node['picket']['data_dir'],
    identity_key: identity_key,
    listen: node['picket']['listen'],
    bootstrap: node['picket']['bootstrap'],
    sync_interval: node['picket']['sync_interval'],
    backend: node['picket']['backend'],
    failsafe_ssh_from: node['picket']['failsafe_ssh_from'],
    metrics: node['picket']['metrics'],
    pagerduty_url: node['picket']['pagerduty_url'],
    log_level: node['picket']['log_level']
  )
  verify "#{picket} agent --check --config %{path}"
  notifies :reload, 'service[picket]', :delayed
end

%w(picket-enforce.service picket.service).each do |unit|
  cookbook_file "/etc/systemd/system/#{unit}" do
    source unit
    notifies :run, 'execute[systemctl daemon-reload]', :immediately
  end
end

execute 'systemctl daemon-reload' do
  action :nothing
end

# Runs at every boot before the network; not started here (the agent enforces on start).
service 'picket-enforce' do
  action :enable
end

service 'picket' do
  action [:enable, :start]
  supports reload: true, restart: true
end
