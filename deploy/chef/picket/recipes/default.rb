# Installs picket and runs it under the hardened systemd unit.
package %w(nodejs npm nftables iproute2)

remote_file '/var/cache/picket.tgz' do
  source node['picket']['package_url']
  notifies :run, 'execute[install picket]', :immediately
end

execute 'install picket' do
  command 'npm install -g /var/cache/picket.tgz'
  action :nothing
  notifies :restart, 'service[picket]'
end

directory '/etc/picket' do
  mode '0750'
end

# Node identity, trusted root and PagerDuty key come from an encrypted data bag item named
# after the node: { "node_key": "...", "root_json": "...", "pagerduty_key": "..." }.
secrets = data_bag_item(node['picket']['data_bag'], node.name)

file '/etc/picket/node.key' do
  content secrets['node_key']
  mode '0600'
  sensitive true
  notifies :restart, 'service[picket]'
end

file '/etc/picket/root.json' do
  content secrets['root_json']
  mode '0644'
  notifies :restart, 'service[picket]'
end

file '/etc/picket/pd.key' do
  content secrets['pagerduty_key']
  mode '0600'
  sensitive true
end

template '/etc/picket/agent.yaml' do
  source 'agent.yaml.erb'
  mode '0640'
  variables(
    mesh_id: node['picket']['mesh_id'],
    listen: node['picket']['listen'],
    bootstrap: node['picket']['bootstrap'],
    sync_interval: node['picket']['sync_interval'],
    backend: node['picket']['backend'],
    failsafe_ssh_from: node['picket']['failsafe_ssh_from'],
    metrics: node['picket']['metrics'],
    pagerduty_url: node['picket']['pagerduty_url'],
    log_level: node['picket']['log_level']
  )
  verify 'picket agent --check --config %{path}'
  notifies :reload, 'service[picket]'
end

cookbook_file '/etc/systemd/system/picket.service' do
  source 'picket.service'
  notifies :run, 'execute[systemctl daemon-reload]', :immediately
end

execute 'systemctl daemon-reload' do
  action :nothing
end

service 'picket' do
  action [:enable, :start]
  supports reload: true, restart: true
end
